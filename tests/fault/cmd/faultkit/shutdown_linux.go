package main

import (
	"errors"
	"os"
	"syscall"
	"unsafe"
)

// EXT4_IOC_SHUTDOWN is _IOR('X', 125, __u32); EXT4_GOING_FLAGS_NOLOGFLUSH
// shuts the file system down without flushing the journal: what a power
// cut leaves.
const (
	ext4IocShutdown = 0x8004587d
	ext4NoLogFlush  = 0x2
)

func cmdExt4Shutdown(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: ext4-shutdown DIR")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	flags := uint32(ext4NoLogFlush)
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), ext4IocShutdown, uintptr(unsafe.Pointer(&flags))); e != 0 {
		return &os.PathError{Op: "EXT4_IOC_SHUTDOWN", Path: args[0], Err: e}
	}
	return nil
}
