package fsx

import "errors"

// ErrNotSupported is returned where the file system or platform lacks a feature (e.g. reflinks).
var ErrNotSupported = errors.New("not supported")
