package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/store"
)

// Files the --subuidmap/--subgidmap flags read; variables so tests can point elsewhere.
var (
	subuidFile = "/etc/subuid"
	subgidFile = "/etc/subgid"
)

// idMapFlags are the ID-mapping flags shared by the layer and container
// creation commands.
type idMapFlags struct {
	hostUID, hostGID bool
	uidMap, gidMap   string
	subUID, subGID   string
}

func (f *idMapFlags) addFlags(fs *flagSet) {
	fs.boolVar(&f.hostUID, []string{"-hostuidmap"}, "Force host UID map")
	fs.boolVar(&f.hostGID, []string{"-hostgidmap"}, "Force host GID map")
	fs.stringVar(&f.uidMap, []string{"-uidmap"}, "UID map")
	fs.stringVar(&f.gidMap, []string{"-gidmap"}, "GID map")
	fs.stringVar(&f.subUID, []string{"-subuidmap"}, "subuid UID map for a user")
	fs.stringVar(&f.subGID, []string{"-subgidmap"}, "subgid GID map for a group")
}

// options turns the flags into store.IDMappingOptions.
func (f *idMapFlags) options() (store.IDMappingOptions, error) {
	opts := store.IDMappingOptions{HostUIDMapping: f.hostUID, HostGIDMapping: f.hostGID}
	if f.hostUID && (f.uidMap != "" || f.subUID != "") {
		return opts, fmt.Errorf("host uid map specified along with UID mapping")
	}
	if f.hostGID && (f.gidMap != "" || f.subGID != "") {
		return opts, fmt.Errorf("host gid map specified along with GID mapping")
	}
	subUID, subGID := f.subUID, f.subGID
	if subUID == "" {
		subUID = subGID
	}
	if subGID == "" {
		subGID = subUID
	}
	if subUID != "" {
		u, err := subIDRanges(subuidFile, subUID, "subuid")
		if err != nil {
			return opts, err
		}
		g, err := subIDRanges(subgidFile, subGID, "subgid")
		if err != nil {
			return opts, err
		}
		opts.UIDMap, opts.GIDMap = u, g
	}
	u, err := parseMap(f.uidMap, "uid")
	if err != nil {
		return opts, err
	}
	g, err := parseMap(f.gidMap, "gid")
	if err != nil {
		return opts, err
	}
	opts.UIDMap = append(opts.UIDMap, u...)
	opts.GIDMap = append(opts.GIDMap, g...)
	return opts, nil
}

// subIDRanges reads the ranges of name from a subuid/subgid file and maps
// them to consecutive container IDs starting at 0.
func subIDRanges(path, name, kind string) ([]idmap.IDMap, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s ranges: %w", kind, err)
	}
	defer f.Close()
	var out []idmap.IDMap
	next := 0
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		parts := strings.Split(text, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s:%d: malformed %s entry %q", path, line, kind, text)
		}
		if parts[0] != name {
			continue
		}
		start, err1 := strconv.ParseUint(parts[1], 10, 32)
		count, err2 := strconv.ParseUint(parts[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			return nil, fmt.Errorf("%s:%d: malformed %s entry %q", path, line, kind, text)
		}
		out = append(out, idmap.IDMap{ContainerID: next, HostID: int(start), Size: int(count)})
		next += int(count)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s ranges found for %q in %s", kind, name, path)
	}
	return out, nil
}

// parseMap parses a --uidmap/--gidmap value, reporting errors with the
// reference's text, which quotes the flag value as given.
func parseMap(spec, kind string) ([]idmap.IDMap, error) {
	m, err := idmap.Parse(spec, kind)
	if err == nil {
		return m, nil
	}
	msg := fmt.Sprintf("initializing ID mappings: %s setting is malformed expected [\"uint32:uint32:uint32\"]: %q", kind, []string{spec})
	if cause := errors.Unwrap(err); cause != nil {
		return nil, fmt.Errorf("%s: %w", msg, cause)
	}
	return nil, errors.New(msg)
}
