//go:build !linux

package fsx

import "os"

func fdatasync(f *os.File) error { return f.Sync() }

// syncPath flushes a directory or regular file with the portable fsync.
func syncPath(path string, dir bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncfs(path string) error { return ErrNotSupported }

// deviceOf returns 0: without syncfs there is nothing to share.
func deviceOf(path string) (uint64, error) { return 0, nil }
