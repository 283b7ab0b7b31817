package fsx

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Reflink makes dst share src's extents (the FICLONE ioctl), so dst's
// content becomes a copy-on-write clone of src's whole content. It returns
// an error wrapping ErrNotSupported when the file system cannot clone (or
// the files are on different file systems); other errors are I/O errors.
func Reflink(dst, src *os.File) error {
	if err := cloneFd(int(dst.Fd()), int(src.Fd())); err != nil {
		return fmt.Errorf("reflink %s to %s: %w", src.Name(), dst.Name(), err)
	}
	return nil
}

// cloneFd runs FICLONE, mapping "cannot clone here" errnos to ErrNotSupported.
func cloneFd(dstFd, srcFd int) error {
	err := unix.IoctlFileClone(dstFd, srcFd)
	if err == nil {
		return nil
	}
	if cloneUnsupported(err) {
		return fmt.Errorf("%w: %w", ErrNotSupported, err)
	}
	return err
}

func cloneUnsupported(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) ||
		errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY) ||
		errors.Is(err, unix.ENOSYS)
}
