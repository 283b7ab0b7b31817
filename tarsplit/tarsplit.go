package tarsplit

import (
	"context"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
)

// Opener opens a layer file by its tar-split name (as it appeared in the archive).
type Opener func(name string) (io.ReadCloser, error)

// Reassemble writes the original uncompressed tar to w from the gzip'd
// tar-split stream and the files open returns, verifying each file's CRC-64
// (a mismatch fails with an error wrapping ErrFileIntegrity whose text is
// "file integrity checksum failed for <name>"). ctx is checked between
// entries; a cancelled ctx leaves w with a prefix of the tar.
func Reassemble(ctx context.Context, w io.Writer, tarSplitGz io.Reader, open Opener) error {
	zr, err := gzip.NewReader(tarSplitGz)
	if err != nil {
		return fmt.Errorf("reading tar-split: %w: %w", ErrCorrupt, err)
	}
	defer zr.Close()
	return ReassembleJSON(ctx, w, zr, open)
}

// ReassembleJSON is Reassemble on the uncompressed JSON stream.
func ReassembleJSON(ctx context.Context, w io.Writer, jsonStream io.Reader, open Opener) error {
	return reassemble(ctx, w, newUnpacker(jsonStream), open)
}
