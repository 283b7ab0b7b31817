package fsx

import (
	"context"

	"github.com/stowage/stowage/internal/idmap"
)

// ShiftMaps describe an ownership shift of a tree: every owner is a host
// ID under From (taken back to a container ID) and becomes the host ID of
// that container ID under To. An empty map is the identity.
type ShiftMaps struct {
	FromUID, FromGID []idmap.IDMap
	ToUID, ToGID     []idmap.IDMap
}

// Identity reports whether the shift changes nothing (From and To are the
// same ranges).
func (m ShiftMaps) Identity() bool {
	return idmap.Equal(m.FromUID, m.ToUID) && idmap.Equal(m.FromGID, m.ToGID)
}

// ShiftOwners re-owns every entry of the tree at root, root included,
// through m (see ShiftMaps). Symbolic links are changed themselves, never
// followed. Each multiply-linked file is shifted once. Set-user-ID and
// set-group-ID bits (which chown clears) and the security.capability xattr
// (which the kernel drops on chown) are restored as they were.
//
// An owner that From does not map is an error wrapping idmap.ErrNotMapped,
// except 0:0, which is kept as container root (a parent that should have
// been mapped but was not); a container ID that To does not map becomes
// the kernel's overflow ID (65534 by default). A cancelled ctx stops the
// walk with the tree partly shifted.
func ShiftOwners(ctx context.Context, root string, m ShiftMaps) error {
	if m.Identity() {
		return nil
	}
	return shiftOwners(ctx, root, m)
}
