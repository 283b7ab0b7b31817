package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/store"
)

// fromTo maps "LAYER [FROM]" to the store's (from, to) order.
func fromTo(args []string) (from, to string) {
	to = args[0]
	if len(args) > 1 {
		from = args[1]
	}
	return from, to
}

var diffCmd = &command{
	names: []string{"diff"}, synopsis: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
	usage: "Compare two layers", minArgs: 1, maxArgs: 2, newRun: func() runner { return &diffRun{} },
}

type diffRun struct {
	cmdBase
	file                          string
	uncompressed, gzip, bzip2, xz bool
}

func (c *diffRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.file, []string{"-file", "f"}, "Write to file instead of stdout")
	fs.boolVar(&c.uncompressed, []string{"-uncompressed", "u"}, "Use no compression")
	fs.boolVar(&c.gzip, []string{"-gzip", "c"}, "Compress using gzip")
	fs.boolVar(&c.bzip2, []string{"-bzip2", "-bz2", "b"}, "Compress using bzip2 (not currently supported)")
	fs.boolVar(&c.xz, []string{"-xz", "x"}, "Compress using xz (not currently supported)")
}

func (c *diffRun) run(ctx context.Context, st *store.Store, args []string) error {
	var opts store.DiffOptions
	set := func(v archive.Compression) { opts.Compression = &v }
	switch {
	case c.uncompressed:
		set(archive.Uncompressed)
	case c.gzip:
		set(archive.Gzip)
	case c.bzip2:
		set(archive.Bzip2)
	case c.xz:
		set(archive.Xz)
	}
	from, to := fromTo(args)
	return writeOutputFunc(c.p, c.file, func(w io.Writer) error { return st.DiffTo(ctx, w, from, to, opts) })
}

var diffSizeCmd = &command{
	names: []string{"diffsize", "diff-size"}, synopsis: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
	usage: "Compare two layers", minArgs: 1, maxArgs: 2, newRun: func() runner { return &diffSizeRun{} },
}

type diffSizeRun struct{ cmdBase }

func (c *diffSizeRun) addFlags(*flagSet) {}

func (c *diffSizeRun) run(ctx context.Context, st *store.Store, args []string) error {
	from, to := fromTo(args)
	n, err := st.DiffSize(ctx, from, to)
	if err != nil {
		return err
	}
	c.p.Printf("%d\n", n)
	return nil
}

var changesCmd = &command{
	names: []string{"changes"}, synopsis: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
	usage: "Compare two layers", minArgs: 1, maxArgs: 2, newRun: func() runner { return &changesRun{} },
}

type changesRun struct{ cmdBase }

func (c *changesRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *changesRun) run(ctx context.Context, st *store.Store, args []string) error {
	from, to := fromTo(args)
	changes, err := st.Changes(ctx, from, to)
	if err != nil {
		return err
	}
	return c.p.Output(c.json, changes, func() {
		for _, ch := range changes {
			c.p.Printf("%s %q\n", changeKindName(ch.Kind), ch.Path)
		}
	})
}

func changeKindName(k archive.ChangeKind) string {
	switch k {
	case archive.ChangeAdd:
		return "Add"
	case archive.ChangeDelete:
		return "Delete"
	case archive.ChangeModify:
		return "Modify"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

var applyDiffCmd = &command{
	names: []string{"applydiff", "apply-diff"}, synopsis: "[options [...]] layerNameOrID [referenceLayerNameOrID]",
	usage: "Apply a diff to a layer", minArgs: 1, maxArgs: 1, newRun: func() runner { return &applyDiffRun{} },
}

type applyDiffRun struct {
	cmdBase
	file string
}

func (c *applyDiffRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.file, []string{"-file", "f"}, "Read from file instead of stdin")
}

func (c *applyDiffRun) run(ctx context.Context, st *store.Store, args []string) error {
	in, err := readInput(c.p, c.file)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = st.ApplyDiff(ctx, args[0], in)
	return err
}

var applyDiffStagingCmd = &command{
	names: []string{"applydiff-using-staging-dir"}, synopsis: "layerNameOrID source",
	usage: "Apply a directory to a layer using a staging directory", minArgs: 2, maxArgs: 2,
	newRun: func() runner { return &notImplementedRun{name: "applydiff-using-staging-dir"} },
}

// notImplementedRun stands in for commands whose store support comes later.
type notImplementedRun struct {
	cmdBase
	name string
	add  func(fs *flagSet)
}

func (c *notImplementedRun) addFlags(fs *flagSet) {
	if c.add != nil {
		c.add(fs)
	}
}

func (c *notImplementedRun) run(context.Context, *store.Store, []string) error {
	return errNotImplemented(c.name)
}

// writeOutputFunc calls write with the file (created or truncated first,
// as the reference does) or stdout when file is empty; an error closing
// the file is the result when write succeeded.
func writeOutputFunc(p *printer, file string, write func(io.Writer) error) (err error) {
	if file == "" {
		return write(p.out)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	return write(f)
}
