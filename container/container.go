package container

import (
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/internal/idmap"
)

// Container is one container record; see ../shared/spec/store-format.md §5.1.
type Container struct {
	ID             string                   `json:"id"`
	Names          []string                 `json:"names,omitempty"`
	ImageID        string                   `json:"image"`
	LayerID        string                   `json:"layer"`
	Metadata       string                   `json:"metadata,omitempty"`
	BigDataNames   []string                 `json:"big-data-names,omitempty"`
	BigDataSizes   map[string]int64         `json:"big-data-sizes,omitempty"`
	BigDataDigests map[string]digest.Digest `json:"big-data-digests,omitempty"`
	Created        time.Time                `json:"created,omitempty"`
	UIDMap         []idmap.IDMap            `json:"uidmap,omitempty"`
	GIDMap         []idmap.IDMap            `json:"gidmap,omitempty"`
	Flags          map[string]any           `json:"flags,omitempty"`

	// Not serialised.
	Volatile bool `json:"-"` // record lives in volatile-containers.json
}
