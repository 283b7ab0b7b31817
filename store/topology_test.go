package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stowage/stowage/layer"
)

func TestIncompleteLayerRemovedOnOpen(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	keep, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := s.CreateLayer(ctx, LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetLayerBigData(ctx, bad.ID, "item", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(opts.GraphRoot, "vfs-layers", "layers.json")
	var recs []map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r["id"] == bad.ID {
			r["flags"] = map[string]any{"incomplete": true}
		}
	}
	data, _ = json.Marshal(recs)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Layer(ctx, bad.ID); !errors.Is(err, ErrLayerUnknown) {
		t.Fatalf("incomplete layer still there: %v", err)
	}
	if _, err := s2.Layer(ctx, keep.ID); err != nil {
		t.Fatalf("complete layer lost: %v", err)
	}
	for _, p := range []string{filepath.Join(opts.GraphRoot, "vfs", "dir", bad.ID), filepath.Join(opts.GraphRoot, "vfs-layers", bad.ID)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s survived: %v", p, err)
		}
	}
}

func TestAdditionalImageStoreAndPullUp(t *testing.T) {
	ctx := testCtx(t)
	ro, roOpts := openTest(t)
	l, err := ro.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "a"})), LayerOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	img, err := ro.CreateImage(ctx, ImageOptions{TopLayer: l.ID, Names: []string{"ro:1"}, BigData: []BigDataItem{{Key: "manifest", Data: []byte("{}")}}})
	if err != nil {
		t.Fatal(err)
	}
	roImages, _ := os.ReadFile(filepath.Join(roOpts.GraphRoot, "vfs-images", "images.json"))

	dir := t.TempDir()
	opts := Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "vfs",
		GraphDriverOptions: []string{"vfs.imagestore=" + roOpts.GraphRoot}}
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Image(ctx, "ro:1")
	if err != nil || !got.ReadOnly || got.ID != img.ID {
		t.Fatalf("RO image: %+v %v", got, err)
	}
	gl, err := s.Layer(ctx, l.ID)
	if err != nil || !gl.ReadOnly {
		t.Fatalf("RO layer: %+v %v", gl, err)
	}
	if err := s.AddNames(ctx, img.ID, []string{"local:2"}); err != nil {
		t.Fatalf("AddNames on RO image: %v", err)
	}
	got, err = s.Image(ctx, img.ID)
	if err != nil || got.ReadOnly || strings.Join(got.Names, ",") != "local:2,ro:1" {
		t.Fatalf("pulled-up image: %+v %v", got, err)
	}
	if data, err := s.ImageBigData(ctx, img.ID, "manifest"); err != nil || string(data) != "{}" {
		t.Fatalf("pulled-up big data: %q %v", data, err)
	}
	after, _ := os.ReadFile(filepath.Join(roOpts.GraphRoot, "vfs-images", "images.json"))
	if !bytes.Equal(after, roImages) {
		t.Fatal("read-only store modified")
	}
	if err := s.DeleteLayer(ctx, l.ID); !errors.Is(err, ErrStoreIsReadOnly) {
		t.Fatalf("DeleteLayer on RO layer: %v", err)
	}
	c, err := s.CreateContainer(ctx, ContainerOptions{Image: "ro:1"})
	if err != nil {
		t.Fatalf("CreateContainer from RO image: %v", err)
	}
	p, err := s.Mount(ctx, c.ID, MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(p, "a")); err != nil || string(data) != "a" {
		t.Fatalf("container sees %q %v", data, err)
	}
}

// slowReader hands out data, then blocks until release is closed.
type slowReader struct {
	data    []byte
	blocked chan struct{}
	release chan struct{}
	once    bool
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if len(r.data) <= 1024 && !r.once {
		r.once = true
		close(r.blocked)
		<-r.release
	}
	n := copy(p, r.data[:min(len(p), max(1, len(r.data)-1024))])
	r.data = r.data[n:]
	return n, nil
}

func TestPutLayerExtractsWithoutLayersLock(t *testing.T) {
	s, _ := openTest(t)
	ctx := testCtx(t)
	blob := makeTar(t, map[string]string{"big": strings.Repeat("x", 100000)})
	r := &slowReader{data: blob, blocked: make(chan struct{}), release: make(chan struct{})}
	type result struct {
		l   *layer.Layer
		err error
	}
	done := make(chan result, 1)
	go func() { // owned by this test: it waits on done below
		l, err := s.PutLayer(ctx, r, LayerOptions{})
		done <- result{l, err}
	}()
	select {
	case <-r.blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("reader never reached the blocking point")
	}
	// The extraction is blocked mid-stream: a writer must still get layers.lock.
	other := make(chan error, 1)
	go func() { // owned by this test
		_, err := s.CreateLayer(ctx, LayerOptions{Names: []string{"during"}})
		other <- err
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Fatalf("CreateLayer during extraction: %v", err)
		}
	case <-time.After(10 * time.Second):
		close(r.release)
		t.Fatal("CreateLayer blocked while PutLayer was extracting")
	}
	close(r.release)
	res := <-done
	if res.err != nil {
		t.Fatalf("PutLayer: %v", res.err)
	}
	if res.l.UncompressedSize != int64(len(blob)) {
		t.Fatalf("size %d want %d", res.l.UncompressedSize, len(blob))
	}
}

func TestMultiProcessWriteSeen(t *testing.T) {
	if os.Getenv("STOWAGE_STORE_CHILD") != "" {
		return
	}
	s, opts := openTest(t)
	ctx := testCtx(t)
	if _, err := s.Images(ctx); err != nil { // warm the cache
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperChildCreateImage$")
	cmd.Env = append(os.Environ(), "STOWAGE_STORE_CHILD=1", "STOWAGE_G="+opts.GraphRoot, "STOWAGE_R="+opts.RunRoot)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	img, err := s.Image(ctx, "from-child")
	if err != nil || img.Metadata != "child" {
		t.Fatalf("parent does not see the child's image: %+v %v", img, err)
	}
}

func TestHelperChildCreateImage(t *testing.T) {
	if os.Getenv("STOWAGE_STORE_CHILD") == "" {
		t.Skip("helper process for TestMultiProcessWriteSeen")
	}
	ctx := testCtx(t)
	s, err := Open(ctx, Options{GraphRoot: os.Getenv("STOWAGE_G"), RunRoot: os.Getenv("STOWAGE_R"), GraphDriverName: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateImage(ctx, ImageOptions{Names: []string{"from-child"}, Metadata: "child"}); err != nil {
		t.Fatal(err)
	}
}

func TestSplitImageStore(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	opts := Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), ImageStore: filepath.Join(dir, "is"), GraphDriverName: "vfs"}
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.CreateLayer(ctx, LayerOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.CreateImage(ctx, ImageOptions{TopLayer: l.ID})
	if err != nil {
		t.Fatal(err)
	}
	for path, id := range map[string]string{
		filepath.Join(opts.ImageStore, "vfs-layers", "layers.json"): l.ID,
		filepath.Join(opts.ImageStore, "vfs-images", "images.json"): img.ID,
	} {
		if data, err := os.ReadFile(path); err != nil || !strings.Contains(string(data), id) {
			t.Fatalf("%s: %s %v", path, data, err)
		}
	}
	c, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID})
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(filepath.Join(opts.GraphRoot, "vfs-layers", "layers.json")); !strings.Contains(string(data), c.LayerID) {
		t.Fatalf("container layer not in G: %s", data)
	}
}

func TestCreateImagePullsUpReadOnlyBigData(t *testing.T) {
	ctx := testCtx(t)
	ro, roOpts := openTest(t)
	img, err := ro.CreateImage(ctx, ImageOptions{Names: []string{"ro:1"}, BigData: []BigDataItem{{Key: "manifest", Data: []byte("{}")}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := Open(ctx, Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "vfs",
		GraphDriverOptions: []string{"vfs.imagestore=" + roOpts.GraphRoot}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.CreateImage(ctx, ImageOptions{ID: img.ID, Names: []string{"local:2"}})
	if err != nil {
		t.Fatalf("CreateImage with a read-only image's ID: %v", err)
	}
	if got.ReadOnly || strings.Join(got.Names, ",") != "ro:1,local:2" {
		t.Fatalf("pulled-up image: %+v", got)
	}
	if data, err := s.ImageBigData(ctx, img.ID, "manifest"); err != nil || string(data) != "{}" {
		t.Fatalf("pulled-up big data: %q %v", data, err)
	}
}
