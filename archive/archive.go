// Package archive owns layer tar streams: compression detection, the
// single-pass unpack (digests, sizes, tar-split, UID/GID sets, whiteouts,
// confinement of hostile paths) and generating diffs from directories.
//
// CONTRACT: the exported signatures in this file are fixed; bodies are
// filled in by the archive work.
package archive

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/internal/idmap"
)

// Compression is a layer blob's compression, as the integer containers/storage records.
type Compression int

const (
	Uncompressed Compression = 0
	Bzip2        Compression = 1
	Gzip         Compression = 2
	Xz           Compression = 3
	Zstd         Compression = 4
)

// WhiteoutFormat selects how AUFS whiteouts in a tar are applied.
type WhiteoutFormat int

const (
	// WhiteoutDelete deletes the whited-out paths (vfs: naive apply).
	WhiteoutDelete WhiteoutFormat = iota
	// WhiteoutOverlay makes char 0/0 devices and opaque xattrs (overlay).
	WhiteoutOverlay
)

// UnpackOptions control Unpack. The zero value unpacks with host IDs and deleting whiteouts.
type UnpackOptions struct {
	UIDMap, GIDMap    []idmap.IDMap
	Whiteouts         WhiteoutFormat
	OpaqueXattr       string // with WhiteoutOverlay: "trusted.overlay.opaque" (root) or "user.overlay.opaque"
	IgnoreChownErrors bool
	// TarSplit, if set, receives the gzip'd tar-split JSON stream of the
	// whole uncompressed input (including trailing padding).
	TarSplit io.Writer
	// CompressedDigest / UncompressedDigest, when set (sha256), are trusted
	// and not recomputed.
	CompressedDigest   digest.Digest
	UncompressedDigest digest.Digest
}

// UnpackResult describes what Unpack read and wrote.
type UnpackResult struct {
	Compression        Compression
	CompressedDigest   digest.Digest
	CompressedSize     int64
	UncompressedDigest digest.Digest
	UncompressedSize   int64    // every byte of the uncompressed stream, trailer included
	UIDs, GIDs         []uint32 // sorted, unique tar IDs of non-whiteout entries
	Size               int64    // bytes of regular-file content written (hard links once)
}

// Sentinel errors.
var (
	ErrUnsafePath       = errors.New("path escapes the layer directory")
	ErrDuplicatePath    = errors.New("duplicates of file paths not supported")
	ErrUnsupportedCompr = errors.New("unsupported compression format")
)

// Unpack reads a possibly compressed layer blob and extracts it into the
// existing directory dest, in one streaming pass. On error dest may hold a
// partial tree: the caller owns removing it.
func Unpack(ctx context.Context, dest string, blob io.Reader, opts UnpackOptions) (UnpackResult, error) {
	return UnpackResult{}, errors.New("archive: not implemented")
}

// DecompressStream detects the compression of r (peeking with ReadFull) and
// returns the decompressed stream. Empty input is an empty uncompressed stream.
func DecompressStream(r io.Reader) (io.ReadCloser, Compression, error) {
	return nil, 0, errors.New("archive: not implemented")
}

// CompressStream wraps w with the given compression (Uncompressed, Gzip or
// Zstd; others fail with ErrUnsupportedCompr, e.g. "unsupported compression format tar.bz2").
func CompressStream(w io.Writer, c Compression) (io.WriteCloser, error) {
	return nil, errors.New("archive: not implemented")
}

// ChangeKind is the kind of a Change: the integers containers/storage uses.
type ChangeKind int

const (
	ChangeModify ChangeKind = 0
	ChangeAdd    ChangeKind = 1
	ChangeDelete ChangeKind = 2
)

// Change is one path changed between two trees ("/a/b").
type Change struct {
	Path string
	Kind ChangeKind
}

// ChangesDirs compares newDir with oldDir ("" = empty tree) naively.
func ChangesDirs(ctx context.Context, newDir, oldDir string) ([]Change, error) {
	return nil, errors.New("archive: not implemented")
}

// ExportOptions control ExportChanges.
type ExportOptions struct {
	UIDMap, GIDMap []idmap.IDMap // host IDs on disk are mapped back to container IDs
}

// ExportChanges writes an uncompressed tar of changes (read from dir) to w:
// deletions as .wh. entries, dirs with trailing "/", relative names.
func ExportChanges(ctx context.Context, w io.Writer, dir string, changes []Change, opts ExportOptions) error {
	return errors.New("archive: not implemented")
}

// ChangesSize sums sizes of non-directory Add/Modify paths in dir (hard links once).
func ChangesSize(dir string, changes []Change) (int64, error) {
	return 0, errors.New("archive: not implemented")
}
