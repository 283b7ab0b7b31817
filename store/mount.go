package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/moby/sys/mountinfo"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/layer"
)

// mountTargetLocked resolves a container (to its layer and the maps the
// driver must shift its lowers through, see mountMaps) or a layer of the
// primary store (no shifting: its files carry its maps).
//
// Locking: layers and containers held.
func (s *Store) mountTargetLocked(nameOrID string) (*layer.Layer, []idmap.IDMap, []idmap.IDMap, error) {
	if c, ok := s.containers.Lookup(nameOrID); ok {
		l, ok := s.layers.Get(c.LayerID)
		if !ok {
			return nil, nil, nil, fmt.Errorf("layer %s of container %s: %w", c.LayerID, c.ID, ErrLayerUnknown)
		}
		return l, c.UIDMap, c.GIDMap, nil
	}
	if l, ok := s.layers.Lookup(nameOrID); ok {
		return l, nil, nil, nil
	}
	if _, _, ok := s.lookupLayerLocked(nameOrID); ok {
		return nil, nil, nil, fmt.Errorf("layer %s: mounting a read-only store's layer read-write: %w", nameOrID, ErrStoreIsReadOnly)
	}
	return nil, nil, nil, ErrLayerUnknown
}

// Mount mounts a layer or a container's layer and returns its path,
// counting mounts in mountpoints.json (vfs: the count keeps increasing).
func (s *Store) Mount(ctx context.Context, nameOrID string, opts MountOptions) (string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{graphWrite: true, layers: modeWrite, containers: modeRead})
	if err != nil {
		return "", err
	}
	defer unlock()
	l, cuid, cgid, err := s.mountTargetLocked(nameOrID)
	if err != nil {
		return "", err
	}
	uid, gid, err := s.mountMaps(l, cuid, cgid)
	if err != nil {
		return "", err
	}
	label := opts.MountLabel
	if label == "" {
		label = l.MountLabel
	}
	// As upstream, a volatile container's layer is mounted volatile (when
	// the driver can): its writes need not survive a crash, like its record.
	// disable-volatile turns that off for every container.
	volatile := false
	if c, ok := s.containers.Lookup(nameOrID); ok && !s.opts.DisableVolatile {
		volatile, _ = c.Flags[volatileFlag].(bool)
	}
	return s.mountLayerLocked(ctx, l.ID, driver.MountOptions{MountLabel: label, Options: opts.Options, UIDMap: uid, GIDMap: gid, Volatile: volatile})
}

// volatileFlag is the container flag upstream sets on volatile containers.
const volatileFlag = "Volatile"

// mountLayerLocked counts one more mount of a primary-store layer,
// asking the driver for it unless it is still mounted.
//
// Locking: graph and layers held for writing.
func (s *Store) mountLayerLocked(ctx context.Context, id string, mo driver.MountOptions) (string, error) {
	m, err := s.layers.UpdateMount(ctx, id, func(m *layer.MountPoint) error {
		if m.Count > 0 && m.Path != "" && isMountPoint(m.Path) {
			m.Count++
			return nil
		}
		p, err := s.graphDriver().Get(ctx, id, mo)
		if err != nil {
			return err
		}
		m.Path = p
		m.Count++
		return nil
	})
	return m.Path, err
}

func isMountPoint(path string) bool {
	ok, err := mountinfo.Mounted(path)
	return err == nil && ok
}

// MountImage mounts an image's top layer read-only ("ro" is added).
func (s *Store) MountImage(ctx context.Context, nameOrID string, opts MountOptions) (string, error) {
	img, err := s.Image(ctx, nameOrID)
	if err != nil {
		return "", err
	}
	if img.TopLayer == "" {
		return "", fmt.Errorf("image %s has no layers: %w", img.ID, ErrLayerUnknown)
	}
	if !slices.Contains(opts.Options, "ro") {
		opts.Options = append(slices.Clone(opts.Options), "ro")
	}
	unlock, err := s.lockStores(ctx, lockSpec{graphWrite: true, layers: modeWrite})
	if err != nil {
		return "", err
	}
	defer unlock()
	l, _, ok := s.lookupLayerLocked(img.TopLayer)
	if !ok {
		return "", fmt.Errorf("locating layer with ID %q: %w", img.TopLayer, ErrLayerUnknown)
	}
	mo := driver.MountOptions{MountLabel: opts.MountLabel, Options: opts.Options} // an image's files carry its maps
	if l.ReadOnly {
		return s.graphDriver().Get(ctx, l.ID, mo) // read-only stores are not counted in our mountpoints.json
	}
	return s.mountLayerLocked(ctx, l.ID, mo)
}

// Unmount undoes one Mount (force: all of them) and returns whether the
// layer is still mounted afterwards.
func (s *Store) Unmount(ctx context.Context, nameOrID string, force bool) (bool, error) {
	unlock, err := s.lockStores(ctx, lockSpec{graphWrite: true, layers: modeWrite, containers: modeRead})
	if err != nil {
		return false, err
	}
	defer unlock()
	l, _, _, err := s.mountTargetLocked(nameOrID)
	if err != nil {
		return false, err
	}
	return s.unmountLocked(ctx, l.ID, force)
}

// unmountLocked drops one mount reference (all with force).
//
// Locking: layers held for writing.
func (s *Store) unmountLocked(ctx context.Context, id string, force bool) (bool, error) {
	m, err := s.layers.UpdateMount(ctx, id, func(m *layer.MountPoint) error {
		if force {
			m.Count = 1
		}
		if m.Count > 1 {
			m.Count--
			return nil
		}
		if err := s.graphDriver().Put(ctx, id); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		m.Count, m.Path = 0, ""
		return nil
	})
	return m.Count > 0, err
}

// UnmountImage undoes one MountImage of the image's top layer.
func (s *Store) UnmountImage(ctx context.Context, nameOrID string, force bool) (bool, error) {
	img, err := s.Image(ctx, nameOrID)
	if err != nil {
		return false, err
	}
	unlock, err := s.lockStores(ctx, lockSpec{graphWrite: true, layers: modeWrite})
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, ok := s.layers.Get(img.TopLayer); !ok {
		if _, _, ro := s.lookupLayerLocked(img.TopLayer); ro {
			return false, s.graphDriver().Put(ctx, img.TopLayer)
		}
		return false, ErrLayerUnknown
	}
	return s.unmountLocked(ctx, img.TopLayer, force)
}

// Mounted returns the mount count of a layer or a container's layer.
func (s *Store) Mounted(ctx context.Context, nameOrID string) (int, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, containers: modeRead})
	if err != nil {
		return 0, err
	}
	defer unlock()
	id := ""
	if c, ok := s.containers.Lookup(nameOrID); ok {
		id = c.LayerID
	} else if l, _, ok := s.lookupLayerLocked(nameOrID); ok {
		id = l.ID
	} else {
		return 0, ErrLayerUnknown
	}
	mounts, err := s.layers.Mounts(ctx)
	if err != nil {
		return 0, err
	}
	return mounts[id].Count, nil
}

// LayerParentOwners returns the host IDs owning the directories above the
// layer's mount point that its mappings cannot represent (upstream
// semantics). Unmapped layers have none; a mapped layer must be mounted.
func (s *Store) LayerParentOwners(ctx context.Context, nameOrID string) (uids, gids []int, err error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	l, ok := s.layers.Lookup(nameOrID)
	if !ok {
		return nil, nil, ErrLayerUnknown
	}
	return s.parentOwnersLocked(ctx, l)
}

// ContainerParentOwners is LayerParentOwners of the container's layer.
func (s *Store) ContainerParentOwners(ctx context.Context, nameOrID string) (uids, gids []int, err error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, containers: modeRead})
	if err != nil {
		return nil, nil, err
	}
	defer unlock()
	c, ok := s.containers.Lookup(nameOrID)
	if !ok {
		return nil, nil, ErrContainerUnknown
	}
	l, ok := s.layers.Get(c.LayerID)
	if !ok {
		return nil, nil, ErrLayerUnknown
	}
	return s.parentOwnersLocked(ctx, l)
}

// parentOwnersLocked walks the mount point's ancestors.
//
// Locking: layers held.
func (s *Store) parentOwnersLocked(ctx context.Context, l *layer.Layer) (uids, gids []int, err error) {
	if len(l.UIDMap) == 0 && len(l.GIDMap) == 0 {
		return nil, nil, nil
	}
	mounts, err := s.layers.Mounts(ctx)
	if err != nil {
		return nil, nil, err
	}
	mp := mounts[l.ID].Path
	if mp == "" {
		return nil, nil, ErrLayerNotMounted
	}
	uset, gset := map[int]bool{}, map[int]bool{}
	for dir := filepath.Dir(mp); dir != "" && dir != "/"; dir = filepath.Dir(dir) {
		for _, stat := range []func(string, *syscall.Stat_t) error{syscall.Stat, syscall.Lstat} {
			var st syscall.Stat_t
			if err := stat(dir, &st); err != nil {
				return nil, nil, fmt.Errorf("read directory ownership: %w", err)
			}
			if _, err := idmap.ToContainer(int(st.Uid), l.UIDMap); err != nil {
				uset[int(st.Uid)] = true
			}
			if _, err := idmap.ToContainer(int(st.Gid), l.GIDMap); err != nil {
				gset[int(st.Gid)] = true
			}
		}
	}
	for u := range uset {
		uids = append(uids, u)
	}
	for g := range gset {
		gids = append(gids, g)
	}
	slices.Sort(uids)
	slices.Sort(gids)
	return uids, gids, nil
}
