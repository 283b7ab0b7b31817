//go:build !linux

package fsx

import "os"

// Reflink makes dst share src's extents. Not available on this platform.
func Reflink(dst, src *os.File) error { return ErrNotSupported }
