package main

import (
	"context"

	"github.com/stowage/stowage/store"
)

var existsCmd = &command{
	names: []string{"exists"}, synopsis: "[LayerOrImageOrContainerNameOrID [...]]",
	usage: "Check if a layer or image or container exists", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &existsRun{} },
}

type existsRun struct {
	cmdBase
	layer, image, container, quiet bool
}

func (c *existsRun) addFlags(fs *flagSet) {
	fs.boolVar(&c.container, []string{"-container", "c"}, "Only succeed if the match is a container")
	fs.boolVar(&c.image, []string{"-image", "i"}, "Only succeed if the match is an image")
	fs.boolVar(&c.layer, []string{"-layer", "l"}, "Only succeed if the match is a layer")
	fs.boolVar(&c.quiet, []string{"-quiet", "q"}, "Don't print names")
	c.jsonFlag(fs)
}

// run prints "ARG: true|false" for existence as any kind (upstream's
// quirk), while the exit status honours the -l/-i/-c filters.
func (c *existsRun) run(ctx context.Context, st *store.Store, args []string) error {
	found := map[string]bool{}
	missing := false
	for _, arg := range args {
		_, _, err := st.Lookup(ctx, arg)
		exists := err == nil
		found[arg] = exists
		if c.container {
			if _, err := st.Container(ctx, arg); err != nil {
				exists = false
			}
		}
		if c.image {
			if _, err := st.Image(ctx, arg); err != nil {
				exists = false
			}
		}
		if c.layer {
			if _, err := st.Layer(ctx, arg); err != nil {
				exists = false
			}
		}
		if !exists {
			missing = true
		}
	}
	if err := c.p.Output(c.json, found, func() {
		if c.quiet {
			return
		}
		printed := map[string]bool{}
		for _, arg := range args {
			if !printed[arg] {
				printed[arg] = true
				c.p.Printf("%s: %v\n", arg, found[arg])
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(missing)
}
