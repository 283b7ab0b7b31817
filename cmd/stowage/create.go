package main

import (
	"context"
	"fmt"
	"os"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/store"
)

var createLayerCmd = &command{
	names: []string{"create-layer", "createlayer"}, synopsis: "[options [...]] [parentLayerNameOrID]",
	usage: "Create a new layer", maxArgs: 1, newRun: func() runner { return &createLayerRun{} },
}

var importLayerCmd = &command{
	names: []string{"import-layer", "importlayer"}, synopsis: "[options [...]] [parentLayerNameOrID]",
	usage: "Import a new layer", maxArgs: 1, newRun: func() runner { return &createLayerRun{importing: true} },
}

type createLayerRun struct {
	cmdBase
	importing bool
	id, label string
	names     []string
	readOnly  bool
	file      string
	maps      idMapFlags
}

func (c *createLayerRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.id, []string{"-id", "i"}, "Layer ID")
	fs.listVar(&c.names, []string{"-name", "n"}, "Layer name")
	fs.stringVar(&c.label, []string{"-label", "l"}, "Mount Label")
	fs.boolVar(&c.readOnly, []string{"-readonly", "r"}, "Mark as read-only")
	if c.importing {
		fs.stringVar(&c.file, []string{"-file", "f"}, "Read from file instead of stdin")
	}
	c.maps.addFlags(fs)
	c.jsonFlag(fs)
}

func (c *createLayerRun) run(ctx context.Context, st *store.Store, args []string) error {
	maps, err := c.maps.options()
	if err != nil {
		return err
	}
	opts := store.LayerOptions{ID: c.id, Names: c.names, MountLabel: c.label, ReadOnly: c.readOnly, IDMapping: maps}
	if len(args) > 0 {
		opts.Parent = args[0]
	}
	l, err := c.create(ctx, st, opts)
	if err != nil {
		return err
	}
	return c.p.Output(c.json, l, func() { c.printIDAndNames(l.ID, l.Names) })
}

// create makes an empty layer, or with --file/stdin (import-layer) one
// holding the given tar.
func (c *createLayerRun) create(ctx context.Context, st *store.Store, opts store.LayerOptions) (*layer.Layer, error) {
	if !c.importing {
		return st.CreateLayer(ctx, opts)
	}
	in, err := readInput(c.p, c.file)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	return st.PutLayer(ctx, in, opts)
}

// printIDAndNames prints the creation output: the ID, then "\tNAME" lines.
func (b *cmdBase) printIDAndNames(id string, names []string) {
	b.p.Printf("%s\n", id)
	for _, n := range names {
		b.p.Printf("\t%s\n", n)
	}
}

var createStorageLayerCmd = &command{
	names: []string{"create-storage-layer"}, synopsis: "[options [...]] [parentLayerNameOrID]",
	usage: "Create a new layer only in the storage driver", maxArgs: 1,
	newRun: func() runner { return &createStorageLayerRun{} },
}

type createStorageLayerRun struct {
	cmdBase
	id, label string
	readOnly  bool
	maps      idMapFlags
}

func (c *createStorageLayerRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.id, []string{"-id", "i"}, "Layer ID")
	fs.stringVar(&c.label, []string{"-label", "l"}, "Mount Label")
	fs.boolVar(&c.readOnly, []string{"-readonly", "r"}, "Mark as read-only")
	c.maps.addFlags(fs)
	c.jsonFlag(fs)
}

func (c *createStorageLayerRun) run(ctx context.Context, st *store.Store, args []string) error {
	maps, err := c.maps.options()
	if err != nil {
		return err
	}
	parent := ""
	if len(args) > 0 {
		parent = args[0]
	}
	id, err := st.CreateStorageLayer(ctx, c.id, parent, store.LayerOptions{MountLabel: c.label, ReadOnly: c.readOnly, IDMapping: maps})
	if err != nil {
		return err
	}
	return c.p.Output(c.json, id, func() { c.p.Printf("%s\n", id) })
}

// metadataFlags are -m/--metadata and -f/--metadata-file.
type metadataFlags struct {
	metadata, file string
}

func (m *metadataFlags) addFlags(fs *flagSet) {
	fs.stringVar(&m.metadata, []string{"-metadata", "m"}, "Metadata")
	fs.stringVar(&m.file, []string{"-metadata-file", "f"}, "Metadata File")
}

// value returns the metadata given (the file wins over -m).
func (m *metadataFlags) value() (string, error) {
	if m.file != "" {
		b, err := os.ReadFile(m.file)
		if err != nil {
			return "", err
		}
		return string(b), nil
	}
	return m.metadata, nil
}

var createImageCmd = &command{
	names: []string{"create-image", "createimage"}, synopsis: "[options [...]] topLayerNameOrID",
	usage: "Create a new image using layers", maxArgs: 1, newRun: func() runner { return &createImageRun{} },
}

type createImageRun struct {
	cmdBase
	id, digest string
	names      []string
	meta       metadataFlags
}

func (c *createImageRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.id, []string{"-id", "i"}, "Image ID")
	fs.listVar(&c.names, []string{"-name", "n"}, "Image name")
	fs.stringVar(&c.digest, []string{"-digest", "d"}, "Image Digest")
	c.meta.addFlags(fs)
	c.jsonFlag(fs)
}

func (c *createImageRun) run(ctx context.Context, st *store.Store, args []string) error {
	md, err := c.meta.value()
	if err != nil {
		return err
	}
	opts := store.ImageOptions{ID: c.id, Names: c.names, Metadata: md}
	if c.digest != "" {
		d := digest.Digest(c.digest)
		if err := d.Validate(); err != nil {
			return fmt.Errorf("invalid digest %q: %w", c.digest, err)
		}
		opts.Digest = d
	}
	if len(args) > 0 {
		opts.TopLayer = args[0]
	}
	img, err := st.CreateImage(ctx, opts)
	if err != nil {
		return err
	}
	return c.p.Output(c.json, img, func() { c.printIDAndNames(img.ID, img.Names) })
}

var createContainerCmd = &command{
	names: []string{"create-container", "createcontainer"}, synopsis: "[options [...]] parentImageNameOrID",
	usage: "Create a new container from an image", minArgs: 1, maxArgs: 1,
	newRun: func() runner { return &createContainerRun{} },
}

type createContainerRun struct {
	cmdBase
	id       string
	names    []string
	meta     metadataFlags
	volatile bool
	maps     idMapFlags
}

func (c *createContainerRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.id, []string{"-id", "i"}, "Container ID")
	fs.listVar(&c.names, []string{"-name", "n"}, "Container name")
	c.meta.addFlags(fs)
	fs.boolVar(&c.volatile, []string{"-volatile"}, "Mark as volatile")
	c.maps.addFlags(fs)
	c.jsonFlag(fs)
}

func (c *createContainerRun) run(ctx context.Context, st *store.Store, args []string) error {
	maps, err := c.maps.options()
	if err != nil {
		return err
	}
	md, err := c.meta.value()
	if err != nil {
		return err
	}
	ctr, err := st.CreateContainer(ctx, store.ContainerOptions{
		ID: c.id, Image: args[0], Names: c.names, Metadata: md, Volatile: c.volatile, IDMapping: maps,
	})
	if err != nil {
		return err
	}
	return c.p.Output(c.json, ctr, func() { c.printIDAndNames(ctr.ID, ctr.Names) })
}
