package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/stowage/stowage/internal/fsx"
)

// Status returns "Root", "Run Root", "Driver Name", "Driver Options" (Go
// list format), the driver's own pairs and "Sync Mode" (how layer content
// is flushed: the driver's sync option, durable by default).
func (s *Store) Status(ctx context.Context) ([][2]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := [][2]string{
		{"Root", s.opts.GraphRoot},
		{"Run Root", s.opts.RunRoot},
		{"Driver Name", s.driverName},
		{"Driver Options", fmt.Sprintf("%v", s.opts.GraphDriverOptions)},
	}
	out = append(out, s.graphDriver().Status()...)
	return append(out, [2]string{"Sync Mode", s.syncMode().String()}), nil
}

// syncMode is the driver's sync option (the driver validated it at Open).
func (s *Store) syncMode() fsx.SyncMode {
	mode := fsx.SyncDurable
	for _, o := range s.driverOpts {
		if k, v, _ := strings.Cut(o, "="); strings.EqualFold(strings.TrimSpace(k), "sync") {
			if m, err := fsx.ParseSyncMode(v); err == nil {
				mode = m
			}
		}
	}
	return mode
}

// Shutdown (spec §7.9) lists the mounted layers; with force it unmounts
// them. If any layer was mounted it returns them with an error wrapping
// ErrLayerMounted and ErrLayerUsedByContainer, even after force. Only
// when nothing was mounted does it record a storage.lock token and call
// the driver's Cleanup.
func (s *Store) Shutdown(ctx context.Context, force bool) ([]string, error) {
	unlock, err := s.lockStores(ctx, lockSpec{graphWrite: true, layers: modeWrite})
	if err != nil {
		return nil, err
	}
	defer unlock()
	mounts, err := s.layers.Mounts(ctx)
	if err != nil {
		return nil, err
	}
	var mounted []string
	for _, l := range s.layers.All() {
		if mounts[l.ID].Count > 0 {
			mounted = append(mounted, l.ID)
		}
	}
	if len(mounted) > 0 {
		if force {
			for _, id := range mounted {
				if _, err := s.unmountLocked(ctx, id, true); err != nil {
					return mounted, err
				}
			}
		}
		return mounted, fmt.Errorf("%w: %w", ErrLayerMounted, ErrLayerUsedByContainer)
	}
	if err := s.graphLock.RecordWrite(); err != nil {
		return nil, err
	}
	return nil, s.graphDriver().Cleanup(ctx)
}
