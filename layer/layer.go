package layer

import (
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/internal/idmap"
)

// Layer is one layer record. Field order and JSON names follow
// containers/storage so that the files are byte-compatible; see
// ../shared/spec/store-format.md §3.1.
type Layer struct {
	ID                 string         `json:"id"`
	Names              []string       `json:"names,omitempty"`
	Parent             string         `json:"parent,omitempty"`
	Metadata           string         `json:"metadata,omitempty"`
	MountLabel         string         `json:"mountlabel,omitempty"`
	Created            time.Time      `json:"created,omitempty"`
	CompressedDigest   digest.Digest  `json:"compressed-diff-digest,omitempty"`
	CompressedSize     int64          `json:"compressed-size,omitempty"`
	UncompressedDigest digest.Digest  `json:"diff-digest,omitempty"`
	TOCDigest          digest.Digest  `json:"toc-digest,omitempty"`
	UncompressedSize   int64          `json:"diff-size,omitempty"`
	CompressionType    int            `json:"compression,omitempty"`
	UIDs               []uint32       `json:"uidset,omitempty"`
	GIDs               []uint32       `json:"gidset,omitempty"`
	Flags              map[string]any `json:"flags,omitempty"`
	UIDMap             []idmap.IDMap  `json:"uidmap,omitempty"`
	GIDMap             []idmap.IDMap  `json:"gidmap,omitempty"`
	BigDataNames       []string       `json:"big-data-names,omitempty"`

	// Not serialised.
	MountPoint string `json:"-"` // from mountpoints.json; stale as soon as the lock is dropped
	MountCount int    `json:"-"`
	ReadOnly   bool   `json:"-"` // lives in a read-only (additional) store
	Volatile   bool   `json:"-"` // record lives in volatile-layers.json
}
