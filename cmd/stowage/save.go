package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stowage/stowage/push"
	"github.com/stowage/stowage/store"
)

const saveSynopsis = "[options [...]] imageNameOrID oci:DIR[:REF] | oci-archive:FILE[:REF] | docker-archive:FILE[:NAME:TAG] | docker://HOST/REPO:TAG"

var saveCmd = &command{
	names: []string{"save"}, synopsis: saveSynopsis,
	usage:   "Write an image to an OCI layout, an OCI or docker archive, or a registry",
	minArgs: 2, maxArgs: 2, newRun: func() runner { return &saveRun{} },
}

var pushCmd = &command{
	names: []string{"push"}, synopsis: saveSynopsis,
	usage:   "Push an image to a registry, an OCI layout or an archive (same as save)",
	minArgs: 2, maxArgs: 2, newRun: func() runner { return &saveRun{} },
}

// saveRun is `save` and `push`: the manifest digest goes to stdout (or a
// JSON summary with --json), progress and the summary line to stderr.
type saveRun struct {
	cmdBase
	compression string
	jobs        string
	tmpDir      string
	quiet       bool
	tlsVerify   bool
	authFile    string
	all         bool
}

func (c *saveRun) addFlags(fs *flagSet) {
	c.tlsVerify = true
	fs.stringVar(&c.compression, []string{"-compression", "-compress"}, "Layer compression: gzip (default), zstd or none")
	fs.stringVar(&c.jobs, []string{"-jobs"}, "Layers exported (and uploaded) at once (default: number of CPUs)")
	fs.stringVar(&c.tmpDir, []string{"-tmpdir"}, "Directory for the compressed layers while writing (default $TMPDIR or /tmp)")
	fs.boolVar(&c.quiet, []string{"-quiet", "q"}, "Print no progress")
	fs.boolVar(&c.tlsVerify, []string{"-tls-verify"}, "Require HTTPS and verify certificates for registries (localhost always uses HTTP)")
	fs.stringVar(&c.authFile, []string{"-authfile"}, "Read registry credentials only from this auth.json")
	fs.boolVar(&c.all, []string{"-all"}, "Write an index of every stored platform of the multi-platform index the image was pulled from")
	c.jsonFlag(fs)
}

func (c *saveRun) run(ctx context.Context, st *store.Store, args []string) error {
	comp, err := push.ParseCompression(c.compression)
	if err != nil {
		return err
	}
	jobs := 0
	if c.jobs != "" {
		if jobs, err = strconv.Atoi(c.jobs); err != nil || jobs < 1 {
			return fmt.Errorf("--jobs %q: want a positive number", c.jobs)
		}
	}
	dest, err := push.ParseDestination(args[1])
	if err != nil {
		return err
	}
	opts := push.Options{Compression: comp, Jobs: jobs, TempDir: c.tmpDir, Insecure: !c.tlsVerify, AuthFile: c.authFile}
	if !c.quiet {
		opts.OnLayer = func(li push.LayerInfo) {
			c.p.Errorf("exported layer %d %s: %s %s\n", li.Index, li.ID, li.BlobDigest, humanBytes(li.Size))
		}
	}
	if c.all {
		return c.runAll(ctx, st, args[0], dest, opts)
	}
	res, err := push.Push(ctx, st, args[0], dest, opts)
	if err != nil {
		return err
	}
	if !c.quiet {
		c.noteIndex(ctx, st, args[0])
		c.p.Errorf("wrote %s to %s: %d layers, %s (%s) in %s\n", args[0], dest, len(res.Layers),
			humanBytes(res.Bytes), comp, res.Duration.Round(time.Millisecond))
	}
	if c.json {
		return c.p.JSON(map[string]any{
			"destination": dest.String(), "manifest-digest": res.ManifestDigest,
			"config-digest": res.ConfigDigest, "layers": res.Layers, "bytes": res.Bytes,
			"seconds": res.Duration.Seconds(),
		})
	}
	c.p.Printf("%s\n", res.ManifestDigest)
	return nil
}

// noteIndex tells, on stderr, that an image pulled from a multi-platform
// index was written as that one platform, and how to write the others.
func (c *saveRun) noteIndex(ctx context.Context, st *store.Store, nameOrID string) {
	img, err := st.Image(ctx, nameOrID)
	if err != nil {
		return
	}
	idx, d, ok, err := push.SourceIndex(ctx, st, img)
	if err != nil || !ok {
		return
	}
	c.p.Errorf("note: %s was pulled from the multi-platform index %s (%d manifests); only this platform was written (as podman push does); --all writes an index of the platforms present in this store\n",
		nameOrID, d, len(idx.Manifests))
}

// runAll is push --all: the index digest goes to stdout.
func (c *saveRun) runAll(ctx context.Context, st *store.Store, nameOrID string, dest push.Destination, opts push.Options) error {
	res, err := push.PushAll(ctx, st, nameOrID, dest, opts)
	if err != nil {
		return err
	}
	if !c.quiet {
		for _, p := range res.Platforms {
			c.p.Errorf("platform %s: image %s, manifest %s, %d layers, %s\n", p.Platform, p.ImageID, p.ManifestDigest, p.Layers, humanBytes(p.Bytes))
		}
		if len(res.Missing) > 0 {
			c.p.Errorf("not in this store, so not written: %s (pull them with --platform first)\n", strings.Join(res.Missing, ", "))
		}
		c.p.Errorf("wrote an index of %d platforms of %s to %s: %s in %s\n", len(res.Platforms), res.SourceIndex, dest,
			humanBytes(res.Bytes), res.Duration.Round(time.Millisecond))
	}
	if c.json {
		missing := res.Missing
		if missing == nil {
			missing = []string{}
		}
		return c.p.JSON(map[string]any{
			"destination": dest.String(), "index-digest": res.IndexDigest, "source-index": res.SourceIndex,
			"platforms": res.Platforms, "missing": missing, "bytes": res.Bytes, "seconds": res.Duration.Seconds(),
		})
	}
	c.p.Printf("%s\n", res.IndexDigest)
	return nil
}
