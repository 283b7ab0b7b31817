package store

// This file fixes the exported API of *Store (the contract between the
// store and the CLI). Bodies live in the other files of the package.

import (
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/internal/idmap"
)

// Options configure Open. The zero value of each field is the default.
type Options struct {
	GraphRoot  string // G
	RunRoot    string // R
	ImageStore string // optional split image store root (I)
	// GraphDriverName is "vfs" or "overlay" ("overlay2" accepted); empty
	// means detect: reuse the driver home found in GraphRoot, else the first usable.
	GraphDriverName string
	// GraphDriverOptions are "[driver].key=value" strings, e.g. "vfs.imagestore=/A".
	GraphDriverOptions []string
	TransientStore     bool
	// DisableVolatile is storage.conf's disable-volatile: volatile
	// containers are never mounted with overlay's volatile option (as
	// containers-storage does) and, outside transient mode, their records
	// and layers are stored and flushed like any other (stowage's choice:
	// data written durably should not hang off a record that may vanish).
	// The container keeps its Volatile flag.
	DisableVolatile bool
	UIDMap, GIDMap  []idmap.IDMap // default mappings for new layers/containers
}

// IDMappingOptions select the ID mappings of a new layer or container.
type IDMappingOptions struct {
	HostUIDMapping, HostGIDMapping bool
	UIDMap, GIDMap                 []idmap.IDMap
}

// LayerOptions describe CreateLayer and PutLayer.
type LayerOptions struct {
	ID         string // empty: random
	Parent     string // nameOrID of the parent; empty: base layer
	Names      []string
	MountLabel string
	ReadOnly   bool // an image layer, not a writable container layer
	IDMapping  IDMappingOptions
	Flags      map[string]any
	// For PutLayer: trusted digests/sizes of the blob (zero: compute).
	CompressedDigest   digest.Digest
	CompressedSize     int64
	UncompressedDigest digest.Digest

	deferFlush bool // set by StageLayer: the flush waits for Commit
}

// ImageOptions describe CreateImage.
type ImageOptions struct {
	ID       string // empty: random
	TopLayer string // nameOrID; empty: an image without layers
	Names    []string
	Digest   digest.Digest
	Metadata string
	Created  time.Time // zero: now
	BigData  []BigDataItem
	Flags    map[string]any
	// MoveNames gives the image Names as AddNames would right after its
	// creation, in the same save of images.json: a name another image
	// holds moves to this one, and each name enters its names history.
	// Without it a name another image holds fails with ErrDuplicateName,
	// as in containers/storage.
	MoveNames bool
}

// ImageUpdate describes UpdateImage.
type ImageUpdate struct {
	BigData  []BigDataItem // written as SetImageBigData does; Digest empty: sha256
	AddNames []string      // given as AddNames does
}

// BigDataItem is one big-data key and value.
type BigDataItem struct {
	Key    string
	Data   []byte
	Digest digest.Digest // optional; computed when empty
}

// ContainerOptions describe CreateContainer.
type ContainerOptions struct {
	ID         string // empty: random
	Image      string // nameOrID; empty: a container without an image
	Names      []string
	Metadata   string
	MountLabel string
	Volatile   bool
	IDMapping  IDMappingOptions
	Flags      map[string]any
}

// MountOptions describe Mount and MountImage.
type MountOptions struct {
	MountLabel string
	Options    []string
}

// DiffOptions describe Diff. A nil Compression keeps the layer's recorded compression.
type DiffOptions struct {
	Compression *archive.Compression
}

// Kind says what sort of object an ID or name resolved to.
type Kind int

const (
	KindNone Kind = iota
	KindLayer
	KindImage
	KindContainer
)

// ManifestDigester computes the digest recorded for an image big-data item
// whose key starts with "manifest".
type ManifestDigester func(data []byte) (digest.Digest, error)
