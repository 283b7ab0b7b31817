package driver

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/stowage/stowage/internal/idmap"
)

// IDShift describes re-owning a layer's files from one pair of mappings to
// another (a vfs copy of a parent whose maps differ from the new layer's):
// a host owner goes to its container ID through From, then back to the
// host through To. An empty map is the identity. Added after the first
// contract.
type IDShift struct {
	FromUID, FromGID []idmap.IDMap
	ToUID, ToGID     []idmap.IDMap
}

// ShiftFor returns the shift from the parent's maps to the new layer's.
func ShiftFor(opts CreateOptions) IDShift {
	return IDShift{FromUID: opts.ParentUIDMap, FromGID: opts.ParentGIDMap, ToUID: opts.UIDMap, ToGID: opts.GIDMap}
}

// Identity reports whether the shift changes no owner.
func (m IDShift) Identity() bool {
	return idmap.Equal(m.FromUID, m.ToUID) && idmap.Equal(m.FromGID, m.ToGID)
}

// Remap returns the new host owner of a file owned by host uid:gid. An
// owner outside From is an error wrapping idmap.ErrNotMapped, except 0:0,
// which is kept as container root (a parent that should have been mapped
// but was not, as upstream tolerates). A container ID outside To becomes
// the kernel's overflow ID (65534 by default), as upstream does.
func (m IDShift) Remap(uid, gid int) (int, int, error) {
	cu, uerr := idmap.ToContainer(uid, m.FromUID)
	cg, gerr := idmap.ToContainer(gid, m.FromGID)
	if uerr != nil || gerr != nil {
		if uid != 0 || gid != 0 {
			return -1, -1, fmt.Errorf("owner %d:%d is outside the source mapping: %w", uid, gid, errors.Join(uerr, gerr))
		}
		cu, cg = 0, 0
	}
	hu, err := idmap.ToHost(cu, m.ToUID)
	if err != nil {
		hu = OverflowID("uid")
	}
	hg, err := idmap.ToHost(cg, m.ToGID)
	if err != nil {
		hg = OverflowID("gid")
	}
	return hu, hg, nil
}

// OverflowID reads the kernel's overflow UID ("uid") or GID ("gid"),
// what unmapped IDs show as, falling back to 65534.
func OverflowID(kind string) int {
	b, err := os.ReadFile("/proc/sys/kernel/overflow" + kind)
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return 65534
}
