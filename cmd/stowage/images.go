package main

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/store"
)

var imagesCmd = &command{
	names: []string{"images"}, synopsis: "[options [...]]", usage: "List images",
	maxArgs: 0, newRun: func() runner { return &imagesRun{} },
}

var imagesByDigestCmd = &command{
	names: []string{"images-by-digest"}, synopsis: "[options [...]] DIGEST", usage: "List images by digest",
	minArgs: 1, maxArgs: 1, newRun: func() runner { return &imagesRun{byDigest: true} },
}

type imagesRun struct {
	cmdBase
	byDigest bool
	quiet    bool
}

func (c *imagesRun) addFlags(fs *flagSet) {
	fs.boolVar(&c.quiet, []string{"-quiet", "q"}, "Only print IDs")
	c.jsonFlag(fs)
}

func (c *imagesRun) run(ctx context.Context, st *store.Store, args []string) error {
	var (
		images []image.Image
		err    error
	)
	if c.byDigest {
		d := digest.Digest(args[0])
		if err := d.Validate(); err != nil {
			return fmt.Errorf("invalid digest %q: %w", args[0], err)
		}
		images, err = st.ImagesByDigest(ctx, d)
	} else {
		images, err = st.Images(ctx)
	}
	if err != nil {
		return err
	}
	if c.json {
		return c.p.JSON(images)
	}
	for _, img := range images {
		c.p.Printf("%s\n", img.ID)
		if c.quiet {
			continue
		}
		for _, n := range img.Names {
			c.p.Printf("\tname: %s\n", n)
		}
		for _, d := range imageDigests(img) {
			c.p.Printf("\tdigest: %s\n", d)
		}
		for _, k := range img.BigDataNames {
			c.p.Printf("\tdata: %s\n", k)
		}
	}
	return nil
}

// imageDigests returns the image's digest list (falling back to Digest).
func imageDigests(img image.Image) []digest.Digest {
	if len(img.Digests) > 0 {
		return img.Digests
	}
	if img.Digest != "" {
		return []digest.Digest{img.Digest}
	}
	return nil
}

var imageCmd = &command{
	names: []string{"image"}, synopsis: "[options [...]] imageNameOrID [...]", usage: "Examine an image",
	minArgs: 1, maxArgs: -1, newRun: func() runner { return &imageRun{} },
}

type imageRun struct{ cmdBase }

func (c *imageRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *imageRun) run(ctx context.Context, st *store.Store, args []string) error {
	found := []image.Image{}
	for _, arg := range args {
		img, err := st.Image(ctx, arg)
		if err != nil {
			continue
		}
		found = append(found, *img)
	}
	if err := c.p.Output(c.json, found, func() {
		for _, img := range found {
			c.p.Printf("ID: %s\n", img.ID)
			for _, n := range img.Names {
				c.p.Printf("Name: %s\n", n)
			}
			c.p.Printf("Top Layer: %s\n", img.TopLayer)
			for _, l := range img.MappedTopLayers {
				c.p.Printf("Top Layer: %s\n", l)
			}
			for _, d := range imageDigests(img) {
				c.p.Printf("Digest: %s\n", d)
			}
			for _, k := range img.BigDataNames {
				c.p.Printf("Data: %s\n", k)
			}
			if size, err := st.ImageSize(ctx, img.ID); err != nil {
				c.p.Printf("Size unknown: %v\n", err)
			} else {
				c.p.Printf("Size: %d\n", size)
			}
			if img.ReadOnly {
				c.p.Printf("Read Only: true\n")
			}
		}
	}); err != nil {
		return err
	}
	return failedStatus(len(found) != len(args))
}
