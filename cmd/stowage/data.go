package main

import (
	"bytes"
	"context"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/store"
)

// kindOps is what the data commands need from the store for one kind.
// The fields take the store first so that method expressions such as
// (*store.Store).ListImageBigData fill them directly.
type kindOps struct {
	list   func(st *store.Store, ctx context.Context, id string) ([]string, error)
	get    func(st *store.Store, ctx context.Context, id, key string) (io.ReadCloser, error)
	set    func(st *store.Store, ctx context.Context, id, key string, data io.Reader) error
	size   func(st *store.Store, ctx context.Context, id, key string) (int64, error)
	digest func(st *store.Store, ctx context.Context, id, key string) (digest.Digest, error)
	dir    func(st *store.Store, ctx context.Context, id string) (string, error)
	runDir func(st *store.Store, ctx context.Context, id string) (string, error)
}

func bytesReader(b []byte, err error) (io.ReadCloser, error) {
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// manifestDigest is the digest function the CLI hands the store for
// manifest* items: the sha256 of the raw bytes, as upstream's CLI does.
func manifestDigest(data []byte) (digest.Digest, error) { return digest.FromBytes(data), nil }

var imageOps = kindOps{
	list: (*store.Store).ListImageBigData,
	get: func(st *store.Store, ctx context.Context, id, key string) (io.ReadCloser, error) {
		return bytesReader(st.ImageBigData(ctx, id, key))
	},
	set: func(st *store.Store, ctx context.Context, id, key string, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return st.SetImageBigData(ctx, id, key, b, manifestDigest)
	},
	size:   (*store.Store).ImageBigDataSize,
	digest: (*store.Store).ImageBigDataDigest,
	dir:    (*store.Store).ImageDirectory,
	runDir: (*store.Store).ImageRunDirectory,
}

var containerOps = kindOps{
	list: (*store.Store).ListContainerBigData,
	get: func(st *store.Store, ctx context.Context, id, key string) (io.ReadCloser, error) {
		return bytesReader(st.ContainerBigData(ctx, id, key))
	},
	set: func(st *store.Store, ctx context.Context, id, key string, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		return st.SetContainerBigData(ctx, id, key, b)
	},
	size:   (*store.Store).ContainerBigDataSize,
	digest: (*store.Store).ContainerBigDataDigest,
	dir:    (*store.Store).ContainerDirectory,
	runDir: (*store.Store).ContainerRunDirectory,
}

var layerOps = kindOps{
	list: (*store.Store).ListLayerBigData,
	get:  (*store.Store).LayerBigData,
	set:  (*store.Store).SetLayerBigData,
}

// dataCmd builds one data command.
func dataCmd(names []string, synopsis, usage string, min, max int, mk func() runner) *command {
	return &command{names: names, synopsis: synopsis, usage: usage, minArgs: min, maxArgs: max, newRun: mk}
}

var (
	listImageDataCmd = dataCmd([]string{"list-image-data", "listimagedata"}, "[options [...]] imageNameOrID",
		"List data items that are attached to an image", 1, 1, func() runner { return &listDataRun{ops: imageOps} })
	getImageDataCmd = dataCmd([]string{"get-image-data", "getimagedata"}, "[options [...]] imageNameOrID dataName",
		"Get data that is attached to an image", 2, 2, func() runner { return &getDataRun{ops: imageOps} })
	getImageDataSizeCmd = dataCmd([]string{"get-image-data-size", "getimagedatasize"}, "[options [...]] imageNameOrID dataName",
		"Get size of data that is attached to an image", 2, 2, func() runner { return &dataInfoRun{ops: imageOps, what: "size"} })
	getImageDataDigestCmd = dataCmd([]string{"get-image-data-digest", "getimagedatadigest"}, "[options [...]] imageNameOrID dataName",
		"Get digest of data that is attached to an image", 2, 2, func() runner { return &dataInfoRun{ops: imageOps, what: "digest"} })
	setImageDataCmd = dataCmd([]string{"set-image-data", "setimagedata"}, "[options [...]] imageNameOrID dataName",
		"Set data that is attached to an image (with sometimes wrong digest)", 2, 2, func() runner { return &setDataRun{ops: imageOps} })
	getImageDirCmd = dataCmd([]string{"get-image-dir", "getimagedir"}, "[options [...]] imageNameOrID",
		"Find the image's associated data directory", 1, 1, func() runner { return &dataInfoRun{ops: imageOps, what: "dir"} })
	getImageRunDirCmd = dataCmd([]string{"get-image-run-dir", "getimagerundir"}, "[options [...]] imageNameOrID",
		"Find the image's associated runtime directory", 1, 1, func() runner { return &dataInfoRun{ops: imageOps, what: "rundir"} })

	listContainerDataCmd = dataCmd([]string{"list-container-data", "listcontainerdata"}, "[options [...]] containerNameOrID",
		"List data items that are attached to an container", 1, 1, func() runner { return &listDataRun{ops: containerOps} })
	getContainerDataCmd = dataCmd([]string{"get-container-data", "getcontainerdata"}, "[options [...]] containerNameOrID dataName",
		"Get data that is attached to an container", 2, 2, func() runner { return &getDataRun{ops: containerOps} })
	getContainerDataSizeCmd = dataCmd([]string{"get-container-data-size", "getcontainerdatasize"}, "[options [...]] containerNameOrID dataName",
		"Get size of data that is attached to an container", 2, 2, func() runner { return &dataInfoRun{ops: containerOps, what: "size"} })
	getContainerDataDigestCmd = dataCmd([]string{"get-container-data-digest", "getcontainerdatadigest"}, "[options [...]] containerNameOrID dataName",
		"Get digest of data that is attached to an container", 2, 2, func() runner { return &dataInfoRun{ops: containerOps, what: "digest"} })
	setContainerDataCmd = dataCmd([]string{"set-container-data", "setcontainerdata"}, "[options [...]] containerNameOrID dataName",
		"Set data that is attached to an container", 2, 2, func() runner { return &setDataRun{ops: containerOps} })
	getContainerDirCmd = dataCmd([]string{"get-container-dir", "getcontainerdir"}, "[options [...]] containerNameOrID",
		"Find the container's associated data directory", 1, 1, func() runner { return &dataInfoRun{ops: containerOps, what: "dir"} })
	getContainerRunDirCmd = dataCmd([]string{"get-container-run-dir", "getcontainerrundir"}, "[options [...]] containerNameOrID",
		"Find the container's associated runtime directory", 1, 1, func() runner { return &dataInfoRun{ops: containerOps, what: "rundir"} })

	listLayerDataCmd = dataCmd([]string{"list-layer-data", "listlayerdata"}, "[options [...]] layerNameOrID",
		"List data items that are attached to a layer", 1, 1, func() runner { return &listDataRun{ops: layerOps} })
	getLayerDataCmd = dataCmd([]string{"get-layer-data", "getlayerdata"}, "[options [...]] layerID dataName",
		"Get data that is attached to a layer", 2, 2, func() runner { return &getDataRun{ops: layerOps} })
	setLayerDataCmd = dataCmd([]string{"set-layer-data", "setlayerdata"}, "[options [...]] layerID dataName",
		"Set data that is attached to a layer", 2, 2, func() runner { return &setDataRun{ops: layerOps} })
)

type listDataRun struct {
	cmdBase
	ops kindOps
}

func (c *listDataRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *listDataRun) run(ctx context.Context, st *store.Store, args []string) error {
	keys, err := c.ops.list(st, ctx, args[0])
	if err != nil {
		return err
	}
	if keys == nil {
		keys = []string{}
	}
	return c.p.Output(c.json, keys, func() {
		for _, k := range keys {
			c.p.Printf("%s\n", k)
		}
	})
}

type getDataRun struct {
	cmdBase
	ops  kindOps
	file string
}

func (c *getDataRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.file, []string{"-file", "f"}, "Write data to file")
}

func (c *getDataRun) run(ctx context.Context, st *store.Store, args []string) error {
	rc, err := c.ops.get(st, ctx, args[0], args[1])
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeOutput(c.p, c.file, rc)
}

type setDataRun struct {
	cmdBase
	ops  kindOps
	file string
}

func (c *setDataRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.file, []string{"-file", "f"}, "Read data from file")
}

func (c *setDataRun) run(ctx context.Context, st *store.Store, args []string) error {
	in, err := readInput(c.p, c.file)
	if err != nil {
		return err
	}
	defer in.Close()
	return c.ops.set(st, ctx, args[0], args[1], in)
}

// dataInfoRun prints one fact: an item's size or digest, or a directory.
type dataInfoRun struct {
	cmdBase
	ops  kindOps
	what string
}

func (c *dataInfoRun) addFlags(*flagSet) {}

func (c *dataInfoRun) run(ctx context.Context, st *store.Store, args []string) error {
	switch c.what {
	case "size":
		n, err := c.ops.size(st, ctx, args[0], args[1])
		if err != nil {
			return err
		}
		c.p.Printf("%d\n", n)
	case "digest":
		d, err := c.ops.digest(st, ctx, args[0], args[1])
		if err != nil {
			return err
		}
		if d == "" {
			return store.ErrDigestUnknown
		}
		c.p.Printf("%s\n", d)
	case "dir", "rundir":
		get := c.ops.dir
		if c.what == "rundir" {
			get = c.ops.runDir
		}
		d, err := get(st, ctx, args[0])
		if err != nil {
			return err
		}
		c.p.Printf("%s\n", d)
	}
	return nil
}
