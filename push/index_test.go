package push

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stowage/stowage/store"
)

// indexFixture stores, on the fixture's layers, the amd64 image and an
// arm64/v8 one, both recorded as pull records images picked from one
// index that also lists linux/s390x (not pulled) and an attestation.
type indexFixture struct {
	*fixture
	arm64ID     string
	arm64Config []byte
	indexDigest string
}

func newIndexFixture(t *testing.T) *indexFixture {
	t.Helper()
	f := newFixture(t, true)
	ctx := testCtx(t)
	x := &indexFixture{fixture: f}
	x.arm64Config = []byte(strings.Replace(string(f.config), `"architecture":"amd64"`, `"architecture":"arm64","variant":"v8"`, 1))
	manifest := func(cfg []byte) []byte {
		return []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[]}`, sha(cfg), len(cfg)))
	}
	mAmd, mArm := manifest(f.config), manifest(x.arm64Config)
	desc := func(m []byte, platform string) string {
		return fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d,"platform":%s}`, sha(m), len(m), platform)
	}
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		desc(mArm, `{"os":"linux","architecture":"arm64","variant":"v8"}`) + `,` +
		desc([]byte("s390x"), `{"os":"linux","architecture":"s390x"}`) + `,` +
		desc(mAmd, `{"os":"linux","architecture":"amd64"}`) + `,` +
		desc([]byte("attestation"), `{"os":"unknown","architecture":"unknown"}`) + `]}`)
	x.indexDigest = sha(index)
	l, err := f.st.Image(ctx, f.imageID)
	if err != nil {
		t.Fatal(err)
	}
	arm, err := f.st.CreateImage(ctx, store.ImageOptions{
		ID: strings.TrimPrefix(sha(x.arm64Config), "sha256:"), TopLayer: l.TopLayer,
		BigData: []store.BigDataItem{
			{Key: "manifest-" + x.indexDigest, Data: index},
			{Key: "manifest-" + sha(mArm), Data: mArm}, {Key: "manifest", Data: mArm},
			{Key: sha(x.arm64Config), Data: x.arm64Config},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	x.arm64ID = arm.ID
	for _, it := range []store.BigDataItem{{Key: "manifest-" + x.indexDigest, Data: index}, {Key: "manifest-" + sha(mAmd), Data: mAmd}, {Key: "manifest", Data: mAmd}} {
		if err := f.st.SetImageBigData(ctx, f.imageID, it.Key, it.Data, nil); err != nil {
			t.Fatal(err)
		}
	}
	return x
}

// check verifies that ii lists the two stored platforms, in the source
// index's order, each with its stored config and the fixture's layers.
func (x *indexFixture) check(t *testing.T, ii v1.ImageIndex, res IndexResult) {
	t.Helper()
	im, err := ii.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("%d manifests in the index, want 2: %+v", len(im.Manifests), im.Manifests)
	}
	want := []struct {
		platform string
		config   []byte
	}{{"linux/arm64/v8", x.arm64Config}, {"linux/amd64", x.config}}
	for i, d := range im.Manifests {
		if got := platformString(d.Platform); got != want[i].platform {
			t.Errorf("manifest %d: platform %s, want %s", i, got, want[i].platform)
		}
		img, err := ii.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := img.RawConfigFile()
		if !bytes.Equal(raw, want[i].config) {
			t.Errorf("manifest %d: config %s, want %s", i, raw, want[i].config)
		}
		layers, _ := img.Layers()
		for k, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(b, x.tars[k]) {
				t.Errorf("manifest %d layer %d differs from the stored tar", i, k)
			}
		}
		if res.Platforms[i].ManifestDigest.String() != d.Digest.String() {
			t.Errorf("result platform %d: manifest %s, index has %s", i, res.Platforms[i].ManifestDigest, d.Digest)
		}
	}
	if h, _ := ii.Digest(); h.String() != res.IndexDigest.String() {
		t.Errorf("index digest %s, result says %s", h, res.IndexDigest)
	}
	if !slices.Equal(res.Missing, []string{"linux/s390x"}) {
		t.Errorf("missing %q, want [linux/s390x]", res.Missing)
	}
	if res.SourceIndex.String() != x.indexDigest {
		t.Errorf("source index %s, want %s", res.SourceIndex, x.indexDigest)
	}
}

func TestPushAll(t *testing.T) {
	x := newIndexFixture(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	opts := Options{TempDir: t.TempDir()}

	// OCI layout, by either platform's image: the same index.
	for _, from := range []string{x.imageID, x.arm64ID} {
		d, _ := ParseDestination("oci:" + filepath.Join(dir, "layout") + ":multi")
		res, err := PushAll(ctx, x.st, from, d, opts)
		if err != nil {
			t.Fatal(err)
		}
		top, err := layout.ImageIndexFromPath(filepath.Join(dir, "layout"))
		if err != nil {
			t.Fatal(err)
		}
		tm, _ := top.IndexManifest()
		if len(tm.Manifests) != 1 || tm.Manifests[0].Annotations[refNameAnnotation] != "multi" {
			t.Fatalf("index.json: %+v (want one entry named multi: the second push replaces the first)", tm.Manifests)
		}
		ii, err := top.ImageIndex(tm.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		x.check(t, ii, res)
	}

	// OCI archive.
	arch := filepath.Join(dir, "multi.tar")
	d, _ := ParseDestination("oci-archive:" + arch)
	res, err := PushAll(ctx, x.st, x.imageID, d, opts)
	if err != nil {
		t.Fatal(err)
	}
	unpacked := filepath.Join(dir, "unpacked")
	untar(t, arch, unpacked)
	top, err := layout.ImageIndexFromPath(unpacked)
	if err != nil {
		t.Fatal(err)
	}
	tm, _ := top.IndexManifest()
	if len(tm.Manifests) != 1 {
		t.Fatalf("archive index.json: %+v", tm.Manifests)
	}
	ii, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	x.check(t, ii, res)

	// Registry.
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	d, _ = ParseDestination("docker://" + host + "/test/multi:1")
	if res, err = PushAll(ctx, x.st, x.imageID, d, opts); err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host + "/test/multi:1")
	rii, err := remote.Index(ref, remote.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	x.check(t, rii, res)

	if ents, _ := filepath.Glob(filepath.Join(opts.TempDir, "stowage-push-*")); len(ents) != 0 {
		t.Errorf("temp dirs left behind: %v", ents)
	}
}

func TestPushAllRefusals(t *testing.T) {
	x := newIndexFixture(t)
	ctx := testCtx(t)
	dir := t.TempDir()
	d, _ := ParseDestination("docker-archive:" + filepath.Join(dir, "a.tar"))
	if _, err := PushAll(ctx, x.st, x.imageID, d, Options{TempDir: t.TempDir()}); !errors.Is(err, ErrBadDestination) || !strings.Contains(err.Error(), "index") {
		t.Errorf("docker-archive: %v, want ErrBadDestination naming the index", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.tar")); !os.IsNotExist(err) {
		t.Errorf("docker-archive written anyway: %v", err)
	}
	// An image that came from no index.
	plain := newFixture(t, true)
	d, _ = ParseDestination("oci:" + filepath.Join(dir, "layout"))
	if _, err := PushAll(ctx, plain.st, plain.imageID, d, Options{TempDir: t.TempDir()}); !errors.Is(err, ErrNotFromIndex) {
		t.Errorf("plain image: %v, want ErrNotFromIndex", err)
	}
	// Push (without All) still writes the one platform.
	res, err := Push(ctx, x.st, x.arm64ID, d, Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := layout.FromPath(filepath.Join(dir, "layout"))
	img, err := p.Image(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(res.ManifestDigest.String(), "sha256:")})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := img.RawConfigFile(); !bytes.Equal(raw, x.arm64Config) {
		t.Errorf("single push wrote config %s", raw)
	}
}
