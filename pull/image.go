package pull

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/store"
)

// Image record, as containers/image's storage destination writes it (what
// podman 4.3 and skopeo 1.9 read):
//
//   - ID: the config digest's hex.
//   - TopLayer: the last layer's ID (LayerIDs).
//   - Digest: the image manifest's digest; Digests follow from the
//     "manifest*" big-data items.
//   - Big data: "manifest-<digest>" and "manifest" (the image manifest),
//     "manifest-<index digest>" (the index it was picked from, if any), and
//     "<config digest>" (the config blob).
//   - Created: the config's "created" time.
//   - Names: added after creation, moving them from any other image, and
//     recorded in the names history (CreateImage with MoveNames: one save
//     of images.json).
//
// An image with this ID already stored (the same config) gets the
// manifests and names added (UpdateImage: one save, or none when it has
// them all).

// manifestKey is the big-data key of the manifest with digest d.
func manifestKey(d digest.Digest) string { return "manifest-" + d.String() }

func (p *puller) bigData() []store.BigDataItem {
	img := p.img
	var items []store.BigDataItem
	if len(img.Index) > 0 && !bytes.Equal(img.Index, img.Manifest) {
		items = append(items, store.BigDataItem{Key: manifestKey(img.IndexDigest), Data: img.Index, Digest: img.IndexDigest})
	}
	items = append(items,
		store.BigDataItem{Key: manifestKey(img.ManifestDigest), Data: img.Manifest, Digest: img.ManifestDigest},
		store.BigDataItem{Key: "manifest", Data: img.Manifest, Digest: img.ManifestDigest},
		store.BigDataItem{Key: img.ConfigDigest.String(), Data: img.Config, Digest: img.ConfigDigest},
	)
	return items
}

// created reads the config's creation time (zero when absent or bad).
func created(config []byte) time.Time {
	var c struct {
		Created time.Time `json:"created"`
	}
	if json.Unmarshal(config, &c) != nil {
		return time.Time{}
	}
	return c.Created.UTC()
}

// createImage records the image (or completes an existing record) and
// gives it the names.
func (p *puller) createImage(ctx context.Context) (string, error) {
	id := p.img.ConfigDigest.Encoded()
	top := ""
	if n := len(p.jobs); n > 0 {
		top = p.jobs[n-1].id
	}
	items := p.bigData()
	_, err := p.st.CreateImage(ctx, store.ImageOptions{
		ID: id, TopLayer: top, Digest: p.img.ManifestDigest, Metadata: "{}", // what containers/image writes without signatures
		Created: created(p.img.Config), BigData: items, Names: p.opts.Names, MoveNames: true,
	})
	if errors.Is(err, store.ErrDuplicateID) {
		err = p.updateImage(ctx, id, top, items)
	}
	if err != nil {
		return "", fmt.Errorf("image %s: %w", id, err)
	}
	return id, nil
}

// updateImage adds the manifests and names to an image already stored
// with the ID.
func (p *puller) updateImage(ctx context.Context, id, top string, items []store.BigDataItem) error {
	have, err := p.st.Image(ctx, id)
	if err != nil {
		return err
	}
	if have.TopLayer != top {
		return fmt.Errorf("already stored with top layer %s, not %s: %w", have.TopLayer, top, store.ErrDuplicateID)
	}
	return p.st.UpdateImage(ctx, id, store.ImageUpdate{BigData: items, AddNames: p.opts.Names})
}
