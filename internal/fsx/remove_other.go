//go:build !linux

package fsx

import "os"

// removeAll has no mounts or inode flags to handle off Linux.
func removeAll(path string) error { return os.RemoveAll(path) }
