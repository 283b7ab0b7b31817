package archive

import (
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
	// FlushEarly starts flushing the file system while extracting (see
	// earlyFlusher), for callers that flush the tree durably afterwards:
	// the disk writes then overlap with extraction. An error of such a
	// flush fails the unpack.
	FlushEarly bool
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
	// RootSet is true when the tar had a "./" entry, so the layer root's
	// owner and mode came from the tar rather than from the staged root.
	RootSet bool
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

// ExportOptions control ExportChanges.
type ExportOptions struct {
	UIDMap, GIDMap []idmap.IDMap // host IDs on disk are mapped back to container IDs
}
