package main

import (
	"context"

	"github.com/stowage/stowage/container"
	"github.com/stowage/stowage/store"
)

var containersCmd = &command{
	names: []string{"containers"}, synopsis: "[options [...]]", usage: "List containers",
	maxArgs: 0, newRun: func() runner { return &containersRun{} },
}

type containersRun struct{ cmdBase }

func (c *containersRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *containersRun) run(ctx context.Context, st *store.Store, _ []string) error {
	ctrs, err := st.Containers(ctx)
	if err != nil {
		return err
	}
	if ctrs == nil {
		ctrs = []container.Container{}
	}
	return c.p.Output(c.json, ctrs, func() {
		for _, ctr := range ctrs {
			c.p.Printf("%s\n", ctr.ID)
			for _, n := range ctr.Names {
				c.p.Printf("\tname: %s\n", n)
			}
			for _, k := range ctr.BigDataNames {
				c.p.Printf("\tdata: %s\n", k)
			}
		}
	})
}

var containerCmd = &command{
	names: []string{"container"}, synopsis: "[options [...]] containerNameOrID [...]", usage: "Examine a container",
	minArgs: 1, maxArgs: -1, newRun: func() runner { return &containerRun{} },
}

type containerRun struct{ cmdBase }

func (c *containerRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *containerRun) run(ctx context.Context, st *store.Store, args []string) error {
	found := []container.Container{}
	for _, arg := range args {
		ctr, err := st.Container(ctx, arg)
		if err != nil {
			continue
		}
		found = append(found, *ctr)
	}
	if err := c.p.Output(c.json, found, func() {
		for _, ctr := range found {
			c.p.Printf("ID: %s\n", ctr.ID)
			for _, n := range ctr.Names {
				c.p.Printf("Name: %s\n", n)
			}
			c.p.Printf("Image: %s\n", ctr.ImageID)
			if img, err := st.Image(ctx, ctr.ImageID); err == nil {
				for _, n := range img.Names {
					c.p.Printf("Image name: %s\n", n)
				}
			}
			if size, err := st.ContainerSize(ctx, ctr.ID); err != nil {
				c.p.Printf("Size unknown: %v\n", err)
			} else {
				c.p.Printf("Size: %d\n", size)
			}
			c.p.Printf("Layer: %s\n", ctr.LayerID)
			for _, k := range ctr.BigDataNames {
				c.p.Printf("Data: %s\n", k)
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(len(found) != len(args))
}
