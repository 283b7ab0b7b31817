package main

import (
	"context"
	"errors"

	"github.com/stowage/stowage/store"
)

var metadataCmd = &command{
	names: []string{"metadata"}, synopsis: "[LayerOrImageOrContainerNameOrID [...]]",
	usage: "Retrieve layer, image, or container metadata", minArgs: 1, maxArgs: -1,
	newRun: func() runner { return &metadataRun{} },
}

type metadataRun struct {
	cmdBase
	quiet bool
}

func (c *metadataRun) addFlags(fs *flagSet) {
	fs.boolVar(&c.quiet, []string{"-quiet", "q"}, "Omit names and IDs")
	c.jsonFlag(fs)
}

func (c *metadataRun) run(ctx context.Context, st *store.Store, args []string) error {
	found := map[string]string{}
	missing := false
	for _, arg := range args {
		md, err := st.Metadata(ctx, arg)
		if err != nil {
			missing = true
			continue
		}
		found[arg] = trimOneNewline(md)
	}
	if err := c.p.Output(c.json, found, func() {
		for _, arg := range args {
			if c.quiet {
				c.p.Printf("%s\n", found[arg])
			} else {
				c.p.Printf("%s: %s\n", arg, found[arg])
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(missing)
}

var setMetadataCmd = &command{
	names: []string{"set-metadata", "setmetadata"}, synopsis: "[options [...]] layerOrImageOrContainerNameOrID",
	usage: "Set layer, image, or container metadata", minArgs: 1, maxArgs: 1,
	newRun: func() runner { return &setMetadataRun{} },
}

type setMetadataRun struct {
	cmdBase
	meta metadataFlags
}

func (c *setMetadataRun) addFlags(fs *flagSet) { c.meta.addFlags(fs) }

func (c *setMetadataRun) run(ctx context.Context, st *store.Store, args []string) error {
	if c.meta.metadata == "" && c.meta.file == "" {
		return errors.New("no new metadata provided")
	}
	md, err := c.meta.value()
	if err != nil {
		return err
	}
	return st.SetMetadata(ctx, args[0], md)
}
