package tarsplit

import "errors"

// ErrFileIntegrity reports a layer file whose CRC-64 differs from the tar-split record.
var ErrFileIntegrity = errors.New("file integrity checksum failed")

// ErrCorrupt reports tar-split metadata that cannot be decoded.
var ErrCorrupt = errors.New("corrupt tar-split metadata")
