package fsx

import (
	"context"
	"errors"
	"os"
)

// Reflink makes dst share src's extents (FICLONE); ErrNotSupported where the FS can't.
func Reflink(dst, src *os.File) error { return ErrNotSupported }

// CopyTree copies the tree at src into the existing empty directory dst,
// preserving modes, owners, times, xattrs, hard links, symlinks, devices and
// fifos; regular files are reflinked where possible, else copy_file_range,
// else read/write.
func CopyTree(ctx context.Context, dst, src string) error { return errors.New("fsx: not implemented") }
