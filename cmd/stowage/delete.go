package main

import (
	"context"

	"github.com/stowage/stowage/store"
)

var deleteCmd = &command{
	names: []string{"delete"}, synopsis: "[LayerOrImageOrContainerNameOrID [...]]",
	usage:   "Delete a layer or image or container, with no safety checks",
	minArgs: 1, maxArgs: -1, newRun: func() runner { return &deleteRun{kind: "any"} },
}

var deleteLayerCmd = &command{
	names: []string{"delete-layer", "deletelayer"}, synopsis: "[LayerNameOrID [...]]",
	usage: "Delete a layer, with safety checks", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &deleteRun{kind: "layer"} },
}

var deleteContainerCmd = &command{
	names: []string{"delete-container", "deletecontainer"}, synopsis: "[ContainerNameOrID [...]]",
	usage: "Delete a container, with safety checks", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &deleteRun{kind: "container"} },
}

// deleteRun implements delete, delete-layer and delete-container.
type deleteRun struct {
	cmdBase
	kind string
}

func (c *deleteRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *deleteRun) run(ctx context.Context, st *store.Store, args []string) error {
	results := map[string]string{}
	failed := false
	for _, arg := range args {
		var err error
		switch c.kind {
		case "layer":
			err = st.DeleteLayer(ctx, arg)
		case "container":
			err = st.DeleteContainer(ctx, arg)
		default:
			err = st.Delete(ctx, arg)
		}
		results[arg] = ""
		if err != nil {
			results[arg] = err.Error()
			failed = true
		}
	}
	if err := c.p.Output(c.json, results, func() {
		for arg, msg := range results {
			if msg != "" {
				c.p.Errorf("%s: %s\n", arg, msg)
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(failed)
}

var deleteImageCmd = &command{
	names: []string{"delete-image", "deleteimage"}, synopsis: "[ImageNameOrID [...]]",
	usage: "Delete an image, with safety checks", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &deleteImageRun{} },
}

type deleteImageRun struct {
	cmdBase
	test bool
}

// deletedImage is delete-image's per-argument JSON record.
type deletedImage struct {
	DeletedLayers []string `json:"deleted-layers,omitempty"`
	Error         string   `json:"error,omitempty"`
}

func (c *deleteImageRun) addFlags(fs *flagSet) {
	fs.boolVar(&c.test, []string{"-test", "t"}, "Only test removal")
	c.jsonFlag(fs)
}

func (c *deleteImageRun) run(ctx context.Context, st *store.Store, args []string) error {
	results := map[string]deletedImage{}
	failed := false
	for _, arg := range args {
		layers, err := st.DeleteImage(ctx, arg, !c.test)
		rec := deletedImage{DeletedLayers: layers}
		if err != nil {
			rec.Error = err.Error()
			failed = true
		}
		results[arg] = rec
	}
	if err := c.p.Output(c.json, results, func() {
		for arg, rec := range results {
			if rec.Error != "" {
				c.p.Errorf("%s: %s\n", arg, rec.Error)
				continue
			}
			for _, l := range rec.DeletedLayers {
				c.p.Errorf("%s: %s\n", arg, l)
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(failed)
}

var wipeCmd = &command{
	names: []string{"wipe"}, usage: "Wipe all layers, images, and containers",
	maxArgs: 0, newRun: func() runner { return &wipeRun{} },
}

type wipeRun struct{ cmdBase }

func (c *wipeRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *wipeRun) run(ctx context.Context, st *store.Store, _ []string) error {
	err := st.Wipe(ctx)
	if c.json {
		return c.p.ErrorJSON(err)
	}
	return err
}
