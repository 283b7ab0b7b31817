package store

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const refCLI = "/usr/bin/containers-storage"

func refStorage(t *testing.T, opts Options, stdin []byte, args ...string) string {
	t.Helper()
	full := append([]string{"--graph", opts.GraphRoot, "--run", opts.RunRoot, "--storage-driver", "vfs"}, args...)
	cmd := exec.Command(refCLI, full...)
	conf := filepath.Join(t.TempDir(), "storage.conf")
	body := "[storage]\ndriver = \"vfs\"\ngraphroot = \"" + opts.GraphRoot + "\"\nrunroot = \"" + opts.RunRoot + "\"\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+conf)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("containers-storage %v: %v\n%s%s", args, err, out, stderr.Bytes())
	}
	return string(out)
}

func requireRef(t *testing.T) {
	if _, err := os.Stat(refCLI); err != nil {
		t.Skip("reference containers-storage binary not installed")
	}
}

func TestInteropStowageWrittenListedByReference(t *testing.T) {
	requireRef(t)
	s, opts := openTest(t)
	ctx := testCtx(t)
	l, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"f": "data\n"})), LayerOptions{Names: []string{"lname"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.CreateImage(ctx, ImageOptions{TopLayer: l.ID, Names: []string{"iname"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetImageBigData(ctx, img.ID, "manifest-x", []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	c, err := s.CreateContainer(ctx, ContainerOptions{Image: img.ID, Names: []string{"cname"}})
	if err != nil {
		t.Fatal(err)
	}
	out := refStorage(t, opts, nil, "layers")
	for _, want := range []string{l.ID, c.LayerID, "name: lname"} {
		if !strings.Contains(out, want) {
			t.Fatalf("reference layers output lacks %q:\n%s", want, out)
		}
	}
	out = refStorage(t, opts, nil, "images")
	if !strings.Contains(out, img.ID) || !strings.Contains(out, "name: iname") || !strings.Contains(out, "data: manifest-x") {
		t.Fatalf("reference images output:\n%s", out)
	}
	out = refStorage(t, opts, nil, "containers")
	if !strings.Contains(out, c.ID) || !strings.Contains(out, "name: cname") {
		t.Fatalf("reference containers output:\n%s", out)
	}
	out = refStorage(t, opts, nil, "mount", c.ID)
	if data, err := os.ReadFile(filepath.Join(strings.TrimSpace(out), "f")); err != nil || string(data) != "data\n" {
		t.Fatalf("reference mount of our container: %q %v", data, err)
	}
	refStorage(t, opts, nil, "unmount", c.ID)
	diff := refStorage(t, opts, nil, "diff", "-u", l.ID)
	if !strings.Contains(diff, "data") {
		t.Fatalf("reference diff of our layer lacks the file")
	}
}

func TestInteropReferenceWrittenReadByStowage(t *testing.T) {
	requireRef(t)
	dir := t.TempDir()
	opts := Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "vfs"}
	blob := makeTar(t, map[string]string{"hello.txt": "hello\n"})
	lid := strings.Fields(refStorage(t, opts, blob, "import-layer", "-n", "reflayer"))[0]
	iid := strings.Fields(refStorage(t, opts, nil, "create-image", "-n", "refimg", lid))[0]
	cid := strings.Fields(refStorage(t, opts, nil, "create-container", "-n", "refctr", iid))[0]
	refStorage(t, opts, []byte("payload"), "set-image-data", iid, "manifest")

	ctx := testCtx(t)
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Layer(ctx, "reflayer")
	if err != nil || l.ID != lid || l.UncompressedSize != int64(len(blob)) {
		t.Fatalf("layer: %+v %v", l, err)
	}
	img, err := s.Image(ctx, "refimg")
	if err != nil || img.ID != iid || img.TopLayer != lid || len(img.Digests) != 1 {
		t.Fatalf("image: %+v %v", img, err)
	}
	if data, err := s.ImageBigData(ctx, iid, "manifest"); err != nil || string(data) != "payload" {
		t.Fatalf("image data %q %v", data, err)
	}
	c, err := s.Container(ctx, "refctr")
	if err != nil || c.ID != cid || c.ImageID != iid {
		t.Fatalf("container: %+v %v", c, err)
	}
	rc, err := s.Diff(ctx, "", lid, DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(rc)
	rc.Close()
	if err != nil || !bytes.Equal(buf.Bytes(), blob) {
		t.Fatalf("diff of reference layer not bit-identical (%d vs %d): %v", buf.Len(), len(blob), err)
	}
	if err := s.DeleteContainer(ctx, cid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteImage(ctx, iid, true); err != nil {
		t.Fatal(err)
	}
	if out := refStorage(t, opts, nil, "layers"); strings.TrimSpace(out) != "" {
		t.Fatalf("reference still sees layers after our delete:\n%s", out)
	}
}
