package push

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/stowage/stowage/store"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type entry struct {
	name, body string
	dir        bool
}

func makeTar(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if e.dir {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// fixture is a vfs store holding a two-layer image.
type fixture struct {
	st      *store.Store
	tars    [][]byte
	diffIDs []string
	imageID string
	config  []byte
}

// newFixture stores two layers and an image; withConfig stores a config
// blob under its digest (as pull and containers/image do).
func newFixture(t *testing.T, withConfig bool) *fixture {
	t.Helper()
	ctx := testCtx(t)
	dir := t.TempDir()
	st, err := store.Open(ctx, store.Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{st: st}
	f.tars = [][]byte{
		makeTar(t, []entry{{name: "etc/", dir: true}, {name: "etc/message", body: "one\n"}, {name: "etc/gone", body: "gone\n"}, {name: "bin/", dir: true}, {name: "bin/x", body: strings.Repeat("x", 100000)}}),
		makeTar(t, []entry{{name: "etc/", dir: true}, {name: "etc/.wh.gone"}, {name: "etc/message", body: "two\n"}}),
	}
	parent := ""
	for _, tb := range f.tars {
		var gz bytes.Buffer
		l, err := st.PutLayer(ctx, bytes.NewReader(tb), store.LayerOptions{Parent: parent, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		_ = gz
		parent = l.ID
		f.diffIDs = append(f.diffIDs, sha(tb))
	}
	opts := store.ImageOptions{TopLayer: parent, Names: []string{"localhost/t:1"}}
	if withConfig {
		f.config = []byte(`{"architecture":"amd64","os":"linux","config":{"Cmd":["/hello"]},"rootfs":{"type":"layers","diff_ids":["` + f.diffIDs[0] + `","` + f.diffIDs[1] + `"]}}`)
		d := sha(f.config)
		opts.ID = strings.TrimPrefix(d, "sha256:")
		opts.BigData = []store.BigDataItem{{Key: d, Data: f.config}}
	}
	img, err := st.CreateImage(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.imageID = img.ID
	return f
}

// checkImage reads every layer of img back uncompressed and compares it
// with the fixture's tars, and the config's diff IDs with theirs.
func (f *fixture) checkImage(t *testing.T, img v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(f.tars) {
		t.Fatalf("%d layers, want %d", len(layers), len(f.tars))
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, f.tars[i]) {
			t.Errorf("layer %d: exported tar differs from the imported one (%d vs %d bytes)", i, len(b), len(f.tars[i]))
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range cf.RootFS.DiffIDs {
		if d.String() != f.diffIDs[i] {
			t.Errorf("config diff ID %d = %s, want %s", i, d, f.diffIDs[i])
		}
	}
	if f.config != nil {
		raw, _ := img.RawConfigFile()
		if !bytes.Equal(raw, f.config) {
			t.Errorf("config changed on export:\n%s\nwant\n%s", raw, f.config)
		}
		cn, _ := img.ConfigName()
		if cn.Hex != f.imageID {
			t.Errorf("config digest %s, want the image ID %s", cn, f.imageID)
		}
	}
}

func TestExportKeepsLayersAndConfig(t *testing.T) {
	for _, c := range []Compression{Gzip, Zstd, None} {
		t.Run(c.String(), func(t *testing.T) {
			f := newFixture(t, true)
			var seen []LayerInfo
			img, err := Export(testCtx(t), f.st, "localhost/t:1", Options{Compression: c, TempDir: t.TempDir(), OnLayer: func(li LayerInfo) { seen = append(seen, li) }})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			f.checkImage(t, img)
			if len(seen) != 2 {
				t.Errorf("OnLayer called %d times, want 2", len(seen))
			}
			m, _ := img.Manifest()
			if want := c.mediaType(); m.Layers[0].MediaType != want {
				t.Errorf("layer media type %s, want %s", m.Layers[0].MediaType, want)
			}
			if c == None && m.Layers[0].Digest.String() != f.diffIDs[0] {
				t.Errorf("uncompressed blob digest %s, want the diff ID %s", m.Layers[0].Digest, f.diffIDs[0])
			}
		})
	}
}

func TestExportSynthesizesConfig(t *testing.T) {
	f := newFixture(t, false)
	img, err := Export(testCtx(t), f.st, f.imageID, Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	f.checkImage(t, img)
	cf, _ := img.ConfigFile()
	if cf.OS != "linux" || cf.RootFS.Type != "layers" {
		t.Errorf("synthesized config: os %q rootfs %q", cf.OS, cf.RootFS.Type)
	}
}

func TestExportRefusesConfigThatDoesNotMatch(t *testing.T) {
	f := newFixture(t, false)
	ctx := testCtx(t)
	bad := []byte(`{"os":"linux","rootfs":{"type":"layers","diff_ids":["` + f.diffIDs[1] + `","` + f.diffIDs[0] + `"]}}`)
	if err := f.st.SetImageBigData(ctx, f.imageID, sha(bad), bad, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err := Export(ctx, f.st, f.imageID, Options{TempDir: dir})
	if !errors.Is(err, ErrDiffIDMismatch) {
		t.Fatalf("Export with a config listing other diff IDs: %v, want ErrDiffIDMismatch", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a failed export left %d entries in its temp dir", len(ents))
	}
}

func TestExportUnknownImage(t *testing.T) {
	f := newFixture(t, false)
	_, err := Export(testCtx(t), f.st, "nope", Options{TempDir: t.TempDir()})
	if !errors.Is(err, store.ErrImageUnknown) {
		t.Fatalf("got %v, want ErrImageUnknown", err)
	}
}

func TestPushToFiles(t *testing.T) {
	f := newFixture(t, true)
	ctx := testCtx(t)
	dir := t.TempDir()
	push := func(dest string) Result {
		t.Helper()
		d, err := ParseDestination(dest)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Push(ctx, f.st, f.imageID, d, Options{TempDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	t.Run("oci", func(t *testing.T) {
		p := filepath.Join(dir, "layout")
		res := push("oci:" + p + ":v1")
		push("oci:" + p + ":v1") // replaces, does not add
		push("oci:" + p + ":v2")
		ii, err := layout.ImageIndexFromPath(p)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := ii.IndexManifest()
		if len(im.Manifests) != 2 {
			t.Fatalf("index has %d manifests, want 2 (v1 replaced, v2 added)", len(im.Manifests))
		}
		if im.Manifests[0].Annotations[refNameAnnotation] == "" {
			t.Errorf("no ref name annotation: %v", im.Manifests[0].Annotations)
		}
		img, err := ii.Image(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(res.ManifestDigest.String(), "sha256:")})
		if err != nil {
			t.Fatal(err)
		}
		f.checkImage(t, img)
	})
	t.Run("oci-archive", func(t *testing.T) {
		p := filepath.Join(dir, "img.tar")
		push("oci-archive:" + p + ":latest")
		out := filepath.Join(dir, "unpacked")
		untar(t, p, out)
		ii, err := layout.ImageIndexFromPath(out)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := ii.IndexManifest()
		if len(im.Manifests) != 1 || im.Manifests[0].Annotations[refNameAnnotation] != "latest" {
			t.Fatalf("index.json: %+v", im.Manifests)
		}
		img, err := ii.Image(im.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		f.checkImage(t, img)
	})
	t.Run("docker-archive", func(t *testing.T) {
		p := filepath.Join(dir, "docker.tar")
		push("docker-archive:" + p + ":localhost/t:1")
		img, err := tarball.ImageFromPath(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.checkImage(t, img)
		m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(p) })
		if err != nil {
			t.Fatal(err)
		}
		if len(m) != 1 || len(m[0].RepoTags) != 1 || m[0].RepoTags[0] != "localhost/t:1" {
			t.Errorf("manifest.json: %+v", m)
		}
	})
	if ents, _ := filepath.Glob(filepath.Join(dir, "stowage-push-*")); len(ents) != 0 {
		t.Errorf("temp dirs left behind: %v", ents)
	}
}

func TestPushToRegistry(t *testing.T) {
	f := newFixture(t, true)
	ctx := testCtx(t)
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	d, err := ParseDestination("docker://" + host + "/test/img:1")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Push(ctx, f.st, f.imageID, d, Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/test/img:1")
	img, err := remote.Image(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := img.Digest(); got.String() != res.ManifestDigest.String() {
		t.Errorf("registry has manifest %s, pushed %s", got, res.ManifestDigest)
	}
	f.checkImage(t, img)
}

func TestParseDestination(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Destination
		err  bool
	}{
		{in: "oci:/a/b", want: Destination{Kind: OCILayout, Path: "/a/b"}},
		{in: "oci:/a/b:latest", want: Destination{Kind: OCILayout, Path: "/a/b", Ref: "latest"}},
		{in: "oci-archive:x.tar:v1", want: Destination{Kind: OCIArchive, Path: "x.tar", Ref: "v1"}},
		{in: "docker-archive:x.tar:localhost/a:1", want: Destination{Kind: DockerArchive, Path: "x.tar", Ref: "localhost/a:1"}},
		{in: "docker://127.0.0.1:5000/a/b:1", want: Destination{Kind: Registry, Ref: "127.0.0.1:5000/a/b:1"}},
		{in: "docker://localhost:5000/a@sha256:" + strings.Repeat("a", 64), want: Destination{Kind: Registry, Ref: "localhost:5000/a@sha256:" + strings.Repeat("a", 64)}},
		{in: "docker:/x", err: true},
		{in: "docker://", err: true},
		{in: "docker://UPPER/x", err: true},
		{in: "oci:", err: true},
		{in: "dir:/x", err: true},
		{in: "/plain/path", err: true},
		{in: "docker-archive:x.tar:Bad Name", err: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDestination(tc.in)
			if tc.err {
				if !errors.Is(err, ErrBadDestination) {
					t.Fatalf("got %+v, %v; want ErrBadDestination", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseCompression(t *testing.T) {
	for in, want := range map[string]Compression{"": Gzip, "gzip": Gzip, "zstd": Zstd, "none": None, "uncompressed": None} {
		if got, err := ParseCompression(in); err != nil || got != want {
			t.Errorf("ParseCompression(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseCompression("bzip2"); !errors.Is(err, ErrBadCompression) {
		t.Errorf("bzip2: %v", err)
	}
}

func untar(t *testing.T, file, dir string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean("/"+h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestExportCancelledLeavesNothing(t *testing.T) {
	f := newFixture(t, true)
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	dir := t.TempDir()
	if _, err := Export(ctx, f.st, f.imageID, Options{TempDir: dir}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Export with a cancelled context: %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a cancelled export left %d entries in its temp dir", len(ents))
	}
}
