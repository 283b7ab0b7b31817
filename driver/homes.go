package driver

import "path/filepath"

// Homes are the directories a driver keeps layers in. Added after the
// first contract, shared by the vfs and overlay drivers.
type Homes struct {
	Home        string   // G/<name>, read-write
	ImageStore  string   // I/<name> of the split image store (read-write), or ""
	ImageStores []string // A/<name> of each read-only image store, in order
}

// NewHomes returns the homes of the driver name for opts: Root as is, and
// name joined to the split and the read-only image store roots.
func NewHomes(opts Options, name string) Homes {
	h := Homes{Home: opts.Root}
	if opts.ImageStore != "" {
		h.ImageStore = filepath.Join(opts.ImageStore, name)
	}
	for _, a := range opts.ImageStores {
		h.ImageStores = append(h.ImageStores, filepath.Join(a, name))
	}
	return h
}

// BaseFor returns the read-write home a new layer goes to: the split image
// store for image (not readWrite) layers when there is one, else Home.
func (h Homes) BaseFor(readWrite bool) string {
	if h.ImageStore != "" && !readWrite {
		return h.ImageStore
	}
	return h.Home
}

// Writable lists the read-write homes: Home, then the split image store's.
// The slice is new on every call.
func (h Homes) Writable() []string {
	if h.ImageStore != "" {
		return []string{h.Home, h.ImageStore}
	}
	return []string{h.Home}
}

// Search lists every home in lookup order: the read-write ones (Writable),
// then the read-only image stores'.
func (h Homes) Search() []string {
	return append(h.Writable(), h.ImageStores...)
}
