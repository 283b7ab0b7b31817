package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is stowage's own version. The command set and output follow
// containers-storage 1.64.0-dev (upstream main); stores stay readable by
// containers-storage 1.43.
const version = "0.1.0"

// commands lists every command in the order of the usage table.
var commands = []*command{
	// containers
	containerCmd, listContainerDataCmd, getContainerDataCmd, getContainerDataSizeCmd,
	getContainerDataDigestCmd, setContainerDataCmd, getContainerDirCmd, getContainerRunDirCmd,
	containerParentOwnersCmd, containersCmd,
	copyCmd,
	createLayerCmd, importLayerCmd, createStorageLayerCmd, createImageCmd, createContainerCmd,
	deleteCmd, deleteLayerCmd, deleteImageCmd, deleteContainerCmd,
	changesCmd, diffSizeCmd, diffCmd, applyDiffCmd, applyDiffStagingCmd,
	existsCmd,
	imageCmd, listImageDataCmd, getImageDataCmd, getImageDataSizeCmd, getImageDataDigestCmd,
	setImageDataCmd, getImageDirCmd, getImageRunDirCmd, imagesCmd, imagesByDigestCmd,
	layerCmd, layerParentOwnersCmd, listLayerDataCmd, getLayerDataCmd, setLayerDataCmd,
	layersCmd, storageLayersCmd,
	metadataCmd, setMetadataCmd,
	pullCmd,
	mountCmd, unmountCmd, mountedCmd,
	pushCmd, saveCmd,
	getNamesCmd, addNamesCmd, setNamesCmd, removeNamesCmd,
	shutdownCmd, statusCmd, lockStatsCmd, versionCmd, wipeCmd, gcCmd, checkCmd, repairCmd, dedupCmd, configCmd, unshareCmd,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCLI(ctx, os.Args, &cliIO{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	os.Exit(code)
}
