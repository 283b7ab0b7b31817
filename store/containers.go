package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/stowage/stowage/container"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/internal/table"
)

// CreateContainer creates a container from an image (or none): its
// read-write layer on the image's top layer, its record, and its data
// and run directories. On failure the layer just made is deleted.
func (s *Store) CreateContainer(ctx context.Context, opts ContainerOptions) (*container.Container, error) {
	// Like upstream, creating a container with ID mappings holds
	// userns.lock over the whole creation (spec §7.3).
	userns := len(opts.IDMapping.UIDMap) > 0 || len(opts.IDMapping.GIDMap) > 0
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite, images: modeWrite, containers: modeWrite, userns: userns})
	if err != nil {
		return nil, err
	}
	defer unlock()
	id := opts.ID
	if id == "" {
		if id, err = newID(func(x string) bool { _, ok := s.containers.Get(x); return ok }); err != nil {
			return nil, err
		}
	}
	names := table.Dedup(opts.Names)
	if err := s.containers.CheckNew(id, nil); err != nil {
		return nil, mapTableErr(err)
	}
	for _, n := range names {
		if holder, ok := s.containers.Lookup(n); ok && slices.Contains(holder.Names, n) {
			return nil, fmt.Errorf("the container name %q is already in use by %s: %w", n, holder.ID, ErrDuplicateName)
		}
	}
	// The container records the asked-for maps (or the store's); its
	// layer is owned as idmaps.go describes.
	uid, gid := s.defaultMaps(opts.IDMapping, nil)
	want := opts.IDMapping
	if want.HostUIDMapping {
		want.UIDMap = nil
	}
	if want.HostGIDMapping {
		want.GIDMap = nil
	}
	imageID, top := "", ""
	layerUID, layerGID := uid, gid
	if opts.Image != "" {
		img, is, ok := s.lookupImageLocked(opts.Image)
		if !ok {
			return nil, imageUnknown(opts.Image)
		}
		imageID = img.ID
		if img.TopLayer != "" {
			tl, err := s.topLayerForMappingLocked(ctx, img, is, want)
			if err != nil {
				return nil, err
			}
			top = tl.ID
			if !want.HostUIDMapping && len(want.UIDMap) == 0 {
				layerUID = tl.UIDMap
			}
			if !want.HostGIDMapping && len(want.GIDMap) == 0 {
				layerGID = tl.GIDMap
			}
		}
	}
	// flagged: the container carries the Volatile flag; volatile: its
	// records and layer go to the unflushed volatile files.
	flagged := opts.Volatile || s.opts.TransientStore
	volatile := s.opts.TransientStore || (opts.Volatile && !s.opts.DisableVolatile)
	l, err := s.createLayerLocked(ctx, LayerOptions{
		Parent:     top,
		MountLabel: opts.MountLabel,
		IDMapping:  IDMappingOptions{HostUIDMapping: layerUID == nil, HostGIDMapping: layerGID == nil, UIDMap: layerUID, GIDMap: layerGID},
	}, volatile)
	if err != nil {
		return nil, err
	}
	flags := copyFlags(opts.Flags)
	if flags == nil {
		flags = map[string]any{}
	}
	flags["MountLabel"], flags["ProcessLabel"] = "", ""
	if flagged {
		flags[volatileFlag] = true
	}
	rec := &container.Container{
		ID: id, Names: names, ImageID: imageID, LayerID: l.ID, Metadata: opts.Metadata,
		Created: time.Now().UTC(), UIDMap: uid, GIDMap: gid, Flags: flags, Volatile: volatile,
	}
	if err := s.addContainerLocked(ctx, rec); err != nil {
		return nil, errors.Join(err, s.deleteLayerFilesLocked(context.WithoutCancel(ctx), l.ID))
	}
	c := container.Copy(rec)
	return &c, nil
}

// addContainerLocked saves the record and makes its directories.
//
// Locking: containers held for writing.
func (s *Store) addContainerLocked(ctx context.Context, rec *container.Container) error {
	if err := s.containers.Add(rec); err != nil {
		return mapTableErr(err)
	}
	err := s.containers.Save(ctx)
	if err == nil {
		mkdir := fsx.MkdirAllDurable
		if rec.Volatile {
			mkdir = os.MkdirAll
		}
		err = mkdir(s.containerDataDir(rec.ID), 0o700)
	}
	if err == nil {
		err = os.MkdirAll(s.containerRunDir(rec.ID), 0o700)
	}
	if err != nil {
		s.containers.Remove(rec.ID)
		return errors.Join(err, s.containers.Save(context.WithoutCancel(ctx)))
	}
	return nil
}

// containerDataDir is G/<drv>-containers/<id>/userdata.
func (s *Store) containerDataDir(id string) string {
	return filepath.Join(s.containers.DataDir(id), "userdata")
}

// containerRunDir is R/<drv>-containers/<id>/userdata.
func (s *Store) containerRunDir(id string) string {
	return filepath.Join(s.opts.RunRoot, s.driverName+"-containers", id, "userdata")
}

// Containers returns a snapshot of every container.
func (s *Store) Containers(ctx context.Context) ([]container.Container, error) {
	unlock, err := s.lockStores(ctx, lockSpec{containers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	out := make([]container.Container, 0, len(s.containers.All()))
	for _, c := range s.containers.All() {
		out = append(out, container.Copy(c))
	}
	return out, nil
}

// Container returns a snapshot of one container (ID, name, layer ID or prefix).
func (s *Store) Container(ctx context.Context, nameOrID string) (*container.Container, error) {
	unlock, err := s.lockStores(ctx, lockSpec{containers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, ok := s.containers.Lookup(nameOrID)
	if !ok {
		return nil, ErrContainerUnknown
	}
	out := container.Copy(c)
	return &out, nil
}

// ContainerSize is the layer's diff size plus the big-data sizes plus the
// disk usage of the data and run directories.
func (s *Store) ContainerSize(ctx context.Context, nameOrID string) (int64, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, containers: modeRead})
	if err != nil {
		return -1, err
	}
	defer unlock()
	c, ok := s.containers.Lookup(nameOrID)
	if !ok {
		return -1, ErrContainerUnknown
	}
	l, _, ok := s.lookupLayerLocked(c.LayerID)
	if !ok {
		return -1, fmt.Errorf("locating layer with ID %q: %w", c.LayerID, ErrLayerUnknown)
	}
	size, err := s.graphDriver().DiffSize(ctx, l.ID, l.Parent)
	if err != nil {
		return -1, err
	}
	for _, n := range c.BigDataSizes {
		size += n
	}
	for _, d := range []string{s.containerDataDir(c.ID), s.containerRunDir(c.ID)} {
		n, err := diskUsage(d)
		if err != nil {
			return -1, err
		}
		size += n
	}
	return size, nil
}

func diskUsage(dir string) (int64, error) {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n, err
}

// ContainerDirectory returns (creating) G/<drv>-containers/<id>/userdata.
func (s *Store) ContainerDirectory(ctx context.Context, nameOrID string) (string, error) {
	c, err := s.Container(ctx, nameOrID)
	if err != nil {
		return "", err
	}
	d := s.containerDataDir(c.ID)
	return d, os.MkdirAll(d, 0o700)
}

// ContainerRunDirectory returns (creating) R/<drv>-containers/<id>/userdata.
func (s *Store) ContainerRunDirectory(ctx context.Context, nameOrID string) (string, error) {
	c, err := s.Container(ctx, nameOrID)
	if err != nil {
		return "", err
	}
	d := s.containerRunDir(c.ID)
	return d, os.MkdirAll(d, 0o700)
}
