package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
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
	stopProfile := startProfiling()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runCLI(ctx, os.Args, &cliIO{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	stopProfile()
	os.Exit(code)
}

// startProfiling honours a hidden environment variable used by the
// benchmarks (bench/run.sh), not part of the CLI:
//
//	STOWAGE_CPUPROFILE=FILE  write a pprof CPU profile of the whole run
//
// (Lock statistics go through $STOWAGE_LOCK_STATS, see lockstats.go.)
// The returned function stops the profile.
func startProfiling() func() {
	var cpu *os.File
	if p := os.Getenv("STOWAGE_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "STOWAGE_CPUPROFILE: %v\n", err)
		} else {
			cpu = f
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
	}
}
