package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/stowage/stowage/container"
	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/store"
)

var layersCmd = &command{
	names: []string{"layers"}, synopsis: "[options [...]]", usage: "List layers",
	maxArgs: 0, newRun: func() runner { return &layersRun{} },
}

type layersRun struct {
	cmdBase
	tree, quick bool
}

func (c *layersRun) addFlags(fs *flagSet) {
	fs.boolVar(&c.tree, []string{"-tree", "t"}, "Use a tree")
	fs.boolVar(&c.quick, []string{"-quick", "q"}, "List only layer IDs")
	c.jsonFlag(fs)
}

func (c *layersRun) run(ctx context.Context, st *store.Store, _ []string) error {
	layers, err := st.Layers(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.p.JSON(layers)
	}
	if c.quick && !c.tree {
		for _, l := range layers {
			c.p.Printf("%s\n", l.ID)
		}
		return nil
	}
	// Image and container notes are best effort, as upstream.
	images, _ := st.Images(ctx)
	containers, _ := st.Containers(ctx)
	byTop := map[string][]image.Image{}
	for _, img := range images {
		for _, id := range append([]string{img.TopLayer}, img.MappedTopLayers...) {
			byTop[id] = append(byTop[id], img)
		}
	}
	byLayer := map[string]container.Container{}
	for _, ctr := range containers {
		byLayer[ctr.LayerID] = ctr
	}
	if c.tree {
		printLayerTree(c.p.out, layers, byTop, byLayer)
		return nil
	}
	for _, l := range layers {
		c.p.Printf("%s\n", l.ID)
		for _, n := range l.Names {
			c.p.Printf("\tname: %s\n", n)
		}
		for _, img := range byTop[l.ID] {
			c.p.Printf("\timage: %s\n", img.ID)
			for _, n := range img.Names {
				c.p.Printf("\t\tname: %s\n", n)
			}
		}
		if ctr, ok := byLayer[l.ID]; ok {
			c.p.Printf("\tcontainer: %s\n", ctr.ID)
			for _, n := range ctr.Names {
				c.p.Printf("\t\tname: %s\n", n)
			}
		}
	}
	return nil
}

// printLayerTree draws the layer forest: one root line per parent that is
// not itself a listed layer ("(base)" for parentless layers), then the
// children in store order.
func printLayerTree(w io.Writer, layers []layer.Layer, byTop map[string][]image.Image, byLayer map[string]container.Container) {
	children := map[string][]layer.Layer{}
	known := map[string]bool{}
	var roots []string
	for _, l := range layers {
		known[l.ID] = true
	}
	for _, l := range layers {
		parent := l.Parent
		if parent == "" {
			parent = "(base)"
		}
		if _, seen := children[parent]; !seen && !known[parent] {
			roots = append(roots, parent)
		}
		children[parent] = append(children[parent], l)
	}
	notes := func(l layer.Layer) []string {
		var out []string
		for _, n := range l.Names {
			out = append(out, "name: "+n)
		}
		if l.MountPoint != "" {
			out = append(out, "mount: "+l.MountPoint)
		}
		for _, img := range byTop[l.ID] {
			out = append(out, "image: "+img.ID)
			for _, n := range img.Names {
				out = append(out, "image name: "+n)
			}
		}
		if ctr, ok := byLayer[l.ID]; ok {
			out = append(out, "container: "+ctr.ID)
			for _, n := range ctr.Names {
				out = append(out, "container name: "+n)
			}
		}
		return out
	}
	visited := map[string]bool{}
	var walk func(parent, prefix string)
	walk = func(parent, prefix string) {
		kids := children[parent]
		for i, l := range kids {
			if visited[l.ID] { // a cycle in corrupt records must not loop forever
				continue
			}
			visited[l.ID] = true
			header, noteHeader, next := "└─", "  ", prefix+"  "
			if i < len(kids)-1 {
				header, noteHeader, next = "├─", "│ ", prefix+"│ "
			}
			fmt.Fprintf(w, "%s%s%s\n", prefix, header, l.ID)
			for _, n := range notes(l) {
				fmt.Fprintf(w, "%s%s%s\n", prefix, noteHeader, n)
			}
			walk(l.ID, next)
		}
	}
	for _, r := range roots {
		fmt.Fprintf(w, "%s\n", r)
		walk(r, "")
	}
}

var storageLayersCmd = &command{
	names: []string{"storage-layers"}, synopsis: "[options [...]]",
	usage:   "List layers known to the storage driver",
	maxArgs: 0, newRun: func() runner { return &storageLayersRun{} },
}

type storageLayersRun struct{ cmdBase }

func (c *storageLayersRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *storageLayersRun) run(ctx context.Context, st *store.Store, _ []string) error {
	ids, err := st.StorageLayers(ctx)
	if err != nil {
		return err
	}
	return c.p.Output(c.json, ids, func() {
		for _, id := range ids {
			c.p.Printf("%s\n", id)
		}
	})
}

var layerCmd = &command{
	names: []string{"layer"}, synopsis: "[options [...]] layerNameOrID [...]", usage: "Examine a layer",
	minArgs: 1, maxArgs: -1, newRun: func() runner { return &layerRun{} },
}

type layerRun struct{ cmdBase }

func (c *layerRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *layerRun) run(ctx context.Context, st *store.Store, args []string) error {
	found := []layer.Layer{}
	for _, arg := range args {
		l, err := st.Layer(ctx, arg)
		if err != nil {
			continue
		}
		found = append(found, *l)
	}
	if err := c.p.Output(c.json, found, func() {
		for _, l := range found {
			c.p.Printf("ID: %s\n", l.ID)
			for _, m := range l.UIDMap {
				c.p.Printf("UID mapping: (container=%d, host=%d, size=%d)\n", m.ContainerID, m.HostID, m.Size)
			}
			for _, m := range l.GIDMap {
				c.p.Printf("GID mapping: (container=%d, host=%d, size=%d)\n", m.ContainerID, m.HostID, m.Size)
			}
			if l.Parent != "" {
				c.p.Printf("Parent: %s\n", l.Parent)
			}
			for _, n := range l.Names {
				c.p.Printf("Name: %s\n", n)
			}
			if l.ReadOnly {
				c.p.Printf("Read Only: true\n")
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(len(found) != len(args))
}

// ownersJSON is the per-argument object of the *-parent-owners commands.
type ownersJSON struct {
	ID   string `json:"ID"`
	UIDs []int  `json:"UIDs"`
	GIDs []int  `json:"GIDs"`
}

var layerParentOwnersCmd = &command{
	names: []string{"layer-parent-owners"}, synopsis: "[options [...]] layerNameOrID [...]",
	usage:   "Compute the set of unmapped parent UIDs and GIDs of the layer",
	minArgs: 1, maxArgs: -1, newRun: func() runner { return &parentOwnersRun{kind: "layer"} },
}

var containerParentOwnersCmd = &command{
	names: []string{"container-parent-owners"}, synopsis: "[options [...]] containerNameOrID [...]",
	usage:   "Compute the set of unmapped parent UIDs and GIDs of the container",
	minArgs: 1, maxArgs: -1, newRun: func() runner { return &parentOwnersRun{kind: "container"} },
}

type parentOwnersRun struct {
	cmdBase
	kind string
}

func (c *parentOwnersRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *parentOwnersRun) run(ctx context.Context, st *store.Store, args []string) error {
	missing := false
	for _, arg := range args {
		var (
			id         string
			uids, gids []int
			err        error
		)
		if c.kind == "layer" {
			var l *layer.Layer
			if l, err = st.Layer(ctx, arg); err == nil {
				id = l.ID
				uids, gids, err = st.LayerParentOwners(ctx, id)
			}
		} else {
			var ctr *container.Container
			if ctr, err = st.Container(ctx, arg); err == nil {
				id = ctr.ID
				uids, gids, err = st.ContainerParentOwners(ctx, id)
			}
		}
		if err != nil {
			missing = true
			continue
		}
		if c.json {
			if err := c.p.JSON(ownersJSON{ID: id, UIDs: uids, GIDs: gids}); err != nil {
				return err
			}
			continue
		}
		c.p.Printf("ID: %s\n", id)
		if c.kind == "container" || len(uids) > 0 {
			c.p.Printf("UIDs: %v\n", nonNil(uids))
		}
		if c.kind == "container" || len(gids) > 0 {
			c.p.Printf("GIDs: %v\n", nonNil(gids))
		}
	}
	return failedStatus(missing)
}

func nonNil(v []int) []int {
	if v == nil {
		return []int{}
	}
	return v
}

// readInput opens file, or returns stdin when file is empty.
func readInput(p *printer, file string) (io.ReadCloser, error) {
	if file == "" {
		return io.NopCloser(p.in), nil
	}
	return os.Open(file)
}

// writeOutput copies r to file (created or truncated), or to stdout when
// file is empty; an error closing the file is the result.
func writeOutput(p *printer, file string, r io.Reader) error {
	return writeOutputFunc(p, file, func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	})
}

// trimOneNewline drops a single trailing newline.
func trimOneNewline(s string) string { return strings.TrimSuffix(s, "\n") }
