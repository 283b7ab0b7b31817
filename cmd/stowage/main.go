package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/stowage/stowage/lockfile"
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

// startProfiling honours two hidden environment variables used by the
// benchmarks (bench/run.sh), not part of the CLI:
//
//	STOWAGE_CPUPROFILE=FILE  write a pprof CPU profile of the whole run
//	STOWAGE_LOCKSTATS=FILE   append one JSON line with this process's lock
//	                         statistics (lockfile.Stats) when it exits
//
// The returned function stops the profile and writes the statistics.
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
		if p := os.Getenv("STOWAGE_LOCKSTATS"); p != "" {
			if err := appendLockStats(p); err != nil {
				fmt.Fprintf(os.Stderr, "STOWAGE_LOCKSTATS: %v\n", err)
			}
		}
	}
}

// appendLockStats appends {"pid":N,"args":[...],"locks":[...]} to path;
// durations are nanoseconds.
func appendLockStats(path string) error {
	type lockStat struct {
		Path        string `json:"path"`
		Locks       int64  `json:"locks"`
		RLocks      int64  `json:"rlocks"`
		Waited      int64  `json:"waited_ns"`
		Held        int64  `json:"held_ns"`
		LongestWait int64  `json:"longest_wait_ns"`
		LongestHold int64  `json:"longest_hold_ns"`
	}
	rec := struct {
		PID   int        `json:"pid"`
		Args  []string   `json:"args"`
		Locks []lockStat `json:"locks"`
	}{PID: os.Getpid(), Args: os.Args[1:], Locks: []lockStat{}}
	for _, s := range lockfile.Stats() {
		rec.Locks = append(rec.Locks, lockStat{
			Path: s.Path, Locks: s.Locks, RLocks: s.RLocks,
			Waited: int64(s.Waited), Held: int64(s.Held),
			LongestWait: int64(s.LongestWait), LongestHold: int64(s.LongestHold),
		})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
