// Package idmap owns UID/GID mapping ranges: their JSON form, parsing of
// the CLI's "C:H:S" syntax, and translation between container and host IDs.
package idmap

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// IDMap is one mapping range, in the JSON shape containers/storage writes.
type IDMap struct {
	ContainerID int `json:"container_id"`
	HostID      int `json:"host_id"`
	Size        int `json:"size"`
}

// ErrNotMapped reports an ID outside every range of a mapping.
var ErrNotMapped = errors.New("id is not mapped")

// ToHost maps a container ID to the host. An empty mapping is the identity.
func ToHost(id int, maps []IDMap) (int, error) {
	if len(maps) == 0 {
		return id, nil
	}
	for _, m := range maps {
		if id >= m.ContainerID && id < m.ContainerID+m.Size {
			return m.HostID + (id - m.ContainerID), nil
		}
	}
	return -1, fmt.Errorf("container ID %d: %w", id, ErrNotMapped)
}

// ToContainer maps a host ID back into the container. An empty mapping is the identity.
func ToContainer(id int, maps []IDMap) (int, error) {
	if len(maps) == 0 {
		return id, nil
	}
	for _, m := range maps {
		if id >= m.HostID && id < m.HostID+m.Size {
			return m.ContainerID + (id - m.HostID), nil
		}
	}
	return -1, fmt.Errorf("host ID %d: %w", id, ErrNotMapped)
}

// Equal reports whether two mappings are the same list of ranges.
func Equal(a, b []IDMap) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Parse reads "C:H:S[:C:H:S...]" as the containers-storage CLI does. kind is
// "uid" or "gid" and only appears in error messages, whose text matches the
// reference: `uid setting is malformed expected ["uint32:uint32:uint32"]: [...]`.
func Parse(spec, kind string) ([]IDMap, error) {
	if spec == "" {
		return nil, nil
	}
	fields := strings.Split(spec, ":")
	if len(fields)%3 != 0 {
		return nil, fmt.Errorf("%s setting is malformed expected [\"uint32:uint32:uint32\"]: %q", kind, fields)
	}
	var out []IDMap
	for i := 0; i < len(fields); i += 3 {
		var v [3]int
		for j := 0; j < 3; j++ {
			n, err := strconv.ParseUint(fields[i+j], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s setting is malformed expected [\"uint32:uint32:uint32\"]: %q: %w", kind, fields, err)
			}
			v[j] = int(n)
		}
		out = append(out, IDMap{ContainerID: v[0], HostID: v[1], Size: v[2]})
	}
	return out, nil
}

// RootPair returns the host UID and GID that container root maps to.
func RootPair(uidMap, gidMap []IDMap) (uid, gid int, err error) {
	if uid, err = ToHost(0, uidMap); err != nil {
		return -1, -1, err
	}
	if gid, err = ToHost(0, gidMap); err != nil {
		return -1, -1, err
	}
	return uid, gid, nil
}

// Contiguous reports whether the ranges, taken in container-ID order, form
// one unbroken range on both sides (each starts where the previous one
// ends, in container and in host IDs). An empty mapping is contiguous.
// containers/storage only shifts IDs at mount time for such mappings.
func Contiguous(maps []IDMap) bool {
	if len(maps) < 2 {
		return true
	}
	s := slices.Clone(maps)
	slices.SortFunc(s, func(a, b IDMap) int { return a.ContainerID - b.ContainerID })
	for i := 1; i < len(s); i++ {
		prev := s[i-1]
		if s[i].ContainerID != prev.ContainerID+prev.Size || s[i].HostID != prev.HostID+prev.Size {
			return false
		}
	}
	return true
}
