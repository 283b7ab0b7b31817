package store

// TEMPORARY: stub bodies that fix the *Store method set for the CLI work.
// The store work replaces each stub with a real implementation in the file
// that owns it, deleting it from here; this file must be gone when the
// store is done.

import (
	"context"
	"errors"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/container"
	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/layer"
)

var errTODO = errors.New("store: not implemented yet")

// Store is an open store. Safe for concurrent use by goroutines; shares the
// directories with other processes through the lock files.
type Store struct{ opts Options }

// Open opens (creating as needed) the store; it recovers incomplete layers and stale temp dirs.
func Open(ctx context.Context, opts Options) (*Store, error) { return nil, errTODO }

// Close releases in-process resources. It does not unmount anything.
func (s *Store) Close() error { return nil }

func (s *Store) GraphRoot() string       { return s.opts.GraphRoot }
func (s *Store) RunRoot() string         { return s.opts.RunRoot }
func (s *Store) GraphDriverName() string { return s.opts.GraphDriverName }
func (s *Store) GraphOptions() []string  { return s.opts.GraphDriverOptions }
func (s *Store) ImageStore() string      { return s.opts.ImageStore }
func (s *Store) TransientStore() bool    { return s.opts.TransientStore }

// Layers.
func (s *Store) CreateLayer(ctx context.Context, opts LayerOptions) (*layer.Layer, error) {
	return nil, errTODO
}
func (s *Store) PutLayer(ctx context.Context, blob io.Reader, opts LayerOptions) (*layer.Layer, error) {
	return nil, errTODO
}

// CreateStorageLayer makes a driver-only layer with no record (check tests use it).
func (s *Store) CreateStorageLayer(ctx context.Context, id, parent string, opts LayerOptions) (string, error) {
	return "", errTODO
}
func (s *Store) Layers(ctx context.Context) ([]layer.Layer, error) { return nil, errTODO }
func (s *Store) Layer(ctx context.Context, nameOrID string) (*layer.Layer, error) {
	return nil, errTODO
}
func (s *Store) LayersByDigest(ctx context.Context, d digest.Digest) ([]layer.Layer, error) {
	return nil, errTODO
}
func (s *Store) StorageLayers(ctx context.Context) ([]string, error)    { return nil, errTODO }
func (s *Store) DeleteLayer(ctx context.Context, nameOrID string) error { return errTODO }
func (s *Store) ApplyDiff(ctx context.Context, nameOrID string, diff io.Reader) (int64, error) {
	return 0, errTODO
}
func (s *Store) Diff(ctx context.Context, from, to string, opts DiffOptions) (io.ReadCloser, error) {
	return nil, errTODO
}
func (s *Store) DiffSize(ctx context.Context, from, to string) (int64, error) { return 0, errTODO }
func (s *Store) Changes(ctx context.Context, from, to string) ([]archive.Change, error) {
	return nil, errTODO
}
func (s *Store) LayerParentOwners(ctx context.Context, nameOrID string) (uids, gids []int, err error) {
	return nil, nil, errTODO
}
func (s *Store) ListLayerBigData(ctx context.Context, nameOrID string) ([]string, error) {
	return nil, errTODO
}
func (s *Store) LayerBigData(ctx context.Context, nameOrID, key string) (io.ReadCloser, error) {
	return nil, errTODO
}
func (s *Store) SetLayerBigData(ctx context.Context, nameOrID, key string, data io.Reader) error {
	return errTODO
}

// Mounts. Mount takes a layer or container nameOrID.
func (s *Store) Mount(ctx context.Context, nameOrID string, opts MountOptions) (string, error) {
	return "", errTODO
}
func (s *Store) MountImage(ctx context.Context, nameOrID string, opts MountOptions) (string, error) {
	return "", errTODO
}

// Unmount returns whether the layer is still mounted afterwards.
func (s *Store) Unmount(ctx context.Context, nameOrID string, force bool) (bool, error) {
	return false, errTODO
}
func (s *Store) UnmountImage(ctx context.Context, nameOrID string, force bool) (bool, error) {
	return false, errTODO
}

// Mounted returns the mount count.
func (s *Store) Mounted(ctx context.Context, nameOrID string) (int, error) { return 0, errTODO }

// Images.
func (s *Store) CreateImage(ctx context.Context, opts ImageOptions) (*image.Image, error) {
	return nil, errTODO
}
func (s *Store) Images(ctx context.Context) ([]image.Image, error) { return nil, errTODO }
func (s *Store) Image(ctx context.Context, nameOrID string) (*image.Image, error) {
	return nil, errTODO
}
func (s *Store) ImagesByDigest(ctx context.Context, d digest.Digest) ([]image.Image, error) {
	return nil, errTODO
}
func (s *Store) ImageSize(ctx context.Context, nameOrID string) (int64, error) { return 0, errTODO }

// DeleteImage removes the image and, with commit, returns the layers it removed.
func (s *Store) DeleteImage(ctx context.Context, nameOrID string, commit bool) ([]string, error) {
	return nil, errTODO
}
func (s *Store) ListImageBigData(ctx context.Context, nameOrID string) ([]string, error) {
	return nil, errTODO
}
func (s *Store) ImageBigData(ctx context.Context, nameOrID, key string) ([]byte, error) {
	return nil, errTODO
}
func (s *Store) ImageBigDataSize(ctx context.Context, nameOrID, key string) (int64, error) {
	return 0, errTODO
}
func (s *Store) ImageBigDataDigest(ctx context.Context, nameOrID, key string) (digest.Digest, error) {
	return "", errTODO
}
func (s *Store) SetImageBigData(ctx context.Context, nameOrID, key string, data []byte, md ManifestDigester) error {
	return errTODO
}
func (s *Store) ImageDirectory(ctx context.Context, nameOrID string) (string, error) {
	return "", errTODO
}
func (s *Store) ImageRunDirectory(ctx context.Context, nameOrID string) (string, error) {
	return "", errTODO
}

// Containers.
func (s *Store) CreateContainer(ctx context.Context, opts ContainerOptions) (*container.Container, error) {
	return nil, errTODO
}
func (s *Store) Containers(ctx context.Context) ([]container.Container, error) { return nil, errTODO }
func (s *Store) Container(ctx context.Context, nameOrID string) (*container.Container, error) {
	return nil, errTODO
}
func (s *Store) ContainerSize(ctx context.Context, nameOrID string) (int64, error) { return 0, errTODO }
func (s *Store) DeleteContainer(ctx context.Context, nameOrID string) error        { return errTODO }
func (s *Store) ListContainerBigData(ctx context.Context, nameOrID string) ([]string, error) {
	return nil, errTODO
}
func (s *Store) ContainerBigData(ctx context.Context, nameOrID, key string) ([]byte, error) {
	return nil, errTODO
}
func (s *Store) ContainerBigDataSize(ctx context.Context, nameOrID, key string) (int64, error) {
	return 0, errTODO
}
func (s *Store) ContainerBigDataDigest(ctx context.Context, nameOrID, key string) (digest.Digest, error) {
	return "", errTODO
}
func (s *Store) SetContainerBigData(ctx context.Context, nameOrID, key string, data []byte) error {
	return errTODO
}
func (s *Store) ContainerDirectory(ctx context.Context, nameOrID string) (string, error) {
	return "", errTODO
}
func (s *Store) ContainerRunDirectory(ctx context.Context, nameOrID string) (string, error) {
	return "", errTODO
}
func (s *Store) ContainerParentOwners(ctx context.Context, nameOrID string) (uids, gids []int, err error) {
	return nil, nil, errTODO
}

// Any kind: names and metadata resolve layers, then images, then containers.
func (s *Store) Lookup(ctx context.Context, nameOrID string) (id string, kind Kind, err error) {
	return "", KindNone, errTODO
}
func (s *Store) Names(ctx context.Context, nameOrID string) ([]string, error)        { return nil, errTODO }
func (s *Store) SetNames(ctx context.Context, nameOrID string, names []string) error { return errTODO }
func (s *Store) AddNames(ctx context.Context, nameOrID string, names []string) error { return errTODO }
func (s *Store) RemoveNames(ctx context.Context, nameOrID string, names []string) error {
	return errTODO
}
func (s *Store) Metadata(ctx context.Context, nameOrID string) (string, error)    { return "", errTODO }
func (s *Store) SetMetadata(ctx context.Context, nameOrID, metadata string) error { return errTODO }

// Delete removes whatever nameOrID names without safety checks.
func (s *Store) Delete(ctx context.Context, nameOrID string) error { return errTODO }

// Wipe removes every container, image and layer.
func (s *Store) Wipe(ctx context.Context) error { return errTODO }

// Shutdown (see spec §7.9) returns the layers that were mounted.
func (s *Store) Shutdown(ctx context.Context, force bool) ([]string, error) { return nil, errTODO }

// Status returns "Root", "Run Root", "Driver Name", "Driver Options" and the driver's pairs.
func (s *Store) Status(ctx context.Context) ([][2]string, error) { return nil, errTODO }
