package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stowage/stowage/pull"
	"github.com/stowage/stowage/source"
	"github.com/stowage/stowage/store"
)

var pullCmd = &command{
	names:    []string{"pull"},
	synopsis: "[options [...]] SOURCE [NAME...]",
	usage:    "Pull an image (oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF], docker://HOST/REPO[:TAG])",
	minArgs:  1, maxArgs: -1, newRun: func() runner { return &pullRun{} },
}

type pullRun struct {
	cmdBase
	jobs     string
	platform string
	quiet    bool
	insecure []string
	authFile string
}

func (c *pullRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.jobs, []string{"-jobs"}, "Layers fetched and extracted at once (default 4)")
	fs.stringVar(&c.platform, []string{"-platform"}, "Platform to pick from a multi-arch image, os/arch[/variant] (default linux/<this machine>)")
	fs.boolVar(&c.quiet, []string{"-quiet", "q"}, "Print only the image ID: no progress or summary")
	fs.listVar(&c.insecure, []string{"-insecure-registry"}, "Registry host:port to reach over plain HTTP (localhost and 127.0.0.1 always are)")
	fs.stringVar(&c.authFile, []string{"-authfile"}, "Read registry credentials only from this auth.json")
	c.jsonFlag(fs)
}

func (c *pullRun) run(ctx context.Context, st *store.Store, args []string) error {
	var sopts pull.SourceOptions
	sopts.Insecure, sopts.AuthFile = c.insecure, c.authFile
	if c.platform != "" {
		p, err := source.ParsePlatform(c.platform)
		if err != nil {
			return err
		}
		sopts.Platform = p
	}
	opts := pull.Options{}
	if c.jobs != "" {
		n, err := strconv.Atoi(c.jobs)
		if err != nil || n < 1 {
			return fmt.Errorf("--jobs %q: want a number of at least 1", c.jobs)
		}
		opts.Jobs = n
	}
	for _, n := range args[1:] {
		nn, err := pull.NormalizeName(n)
		if err != nil {
			return err
		}
		opts.Names = append(opts.Names, nn)
	}
	src, err := pull.OpenSource(args[0], sopts)
	if err != nil {
		return err
	}
	defer src.Close()
	opts.SourceNames = true
	prog := c.newProgress()
	opts.Progress = prog
	res, err := pull.Pull(ctx, st, src, opts)
	prog.finish()
	if err != nil {
		return fmt.Errorf("pulling %s: %w", args[0], err)
	}
	if c.json {
		return c.p.JSON(res)
	}
	c.p.Printf("%s\n", res.ImageID)
	if !c.quiet {
		c.p.Errorf("%s\n", summary(res))
	}
	return nil
}

// summary is the final line: layers fetched/copied/reused, bytes, time.
func summary(res *pull.Result) string {
	names := ""
	if len(res.Names) > 0 {
		names = " (" + strings.Join(res.Names, ", ") + ")"
	}
	return fmt.Sprintf("pulled %s%s: %d layers: %d fetched, %d copied from stored layers, %d reused; %s read in %s",
		shortID(res.ImageID), names, len(res.Layers), res.Fetched, res.Copied, res.Reused,
		humanBytes(res.Bytes), res.Duration.Round(time.Millisecond))
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// newProgress picks the progress display: none (--quiet), JSON lines on
// stderr (--json), bars (stderr is a terminal) or plain lines.
func (c *pullRun) newProgress() pullProgress {
	switch {
	case c.quiet:
		return quietProgress{}
	case c.json:
		return newJSONProgress(c.p.errOut)
	}
	if f, ok := c.p.errOut.(*os.File); ok && isTerminal(f) {
		return newBarProgress(f)
	}
	return newLineProgress(c.p.errOut)
}
