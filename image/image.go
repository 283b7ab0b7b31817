package image

import (
	"time"

	"github.com/opencontainers/go-digest"
)

// Image is one image record; see ../shared/spec/store-format.md §4.1.
type Image struct {
	ID              string                   `json:"id"`
	Digest          digest.Digest            `json:"digest,omitempty"`
	Names           []string                 `json:"names,omitempty"`
	NamesHistory    []string                 `json:"names-history,omitempty"`
	TopLayer        string                   `json:"layer,omitempty"`
	MappedTopLayers []string                 `json:"mapped-layers,omitempty"`
	Metadata        string                   `json:"metadata,omitempty"`
	BigDataNames    []string                 `json:"big-data-names,omitempty"`
	BigDataSizes    map[string]int64         `json:"big-data-sizes,omitempty"`
	BigDataDigests  map[string]digest.Digest `json:"big-data-digests,omitempty"`
	Created         time.Time                `json:"created,omitempty"`
	Flags           map[string]any           `json:"flags,omitempty"`

	// Not serialised.
	Digests  []digest.Digest `json:"-"` // Digest first, then manifest* big-data digests
	ReadOnly bool            `json:"-"`
}
