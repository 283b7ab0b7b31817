package source

import (
	"errors"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want v1.Platform
		ok   bool
	}{
		{"linux/amd64", v1.Platform{OS: "linux", Architecture: "amd64"}, true},
		{"linux/arm/v7", v1.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, true},
		{"linux", v1.Platform{}, false},
		{"linux//v7", v1.Platform{}, false},
		{"a/b/c/d", v1.Platform{}, false},
	} {
		got, err := ParsePlatform(tc.in)
		if (err == nil) != tc.ok || (tc.ok && got.String() != tc.want.String()) {
			t.Errorf("ParsePlatform(%q) = %v, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadReference) {
			t.Errorf("ParsePlatform(%q) error %v is not ErrBadReference", tc.in, err)
		}
	}
}

const index = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"os":"linux","architecture":"amd64"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","platform":{"os":"linux","architecture":"arm64"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","platform":{"os":"linux","architecture":"arm","variant":"v6"}},
 {"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","platform":{"os":"linux","architecture":"arm","variant":"v7"}}]}`

func TestSelectManifest(t *testing.T) {
	if !IsIndex("", []byte(index)) || IsIndex("", []byte(`{"config":{}}`)) {
		t.Fatal("IsIndex misjudges")
	}
	for _, tc := range []struct {
		p    string
		want byte // first hex digit of the digest; 0: no match
	}{{"linux/amd64", '1'}, {"linux/arm64", '2'}, {"linux/arm64/v8", '2'}, {"linux/arm/v7", '4'}, {"linux/arm/v6", '3'}, {"linux/arm", '3'}, {"linux/s390x", 0}, {"windows/amd64", 0}} {
		p, _ := ParsePlatform(tc.p)
		d, err := SelectManifest([]byte(index), p)
		if tc.want == 0 {
			if !errors.Is(err, ErrNoPlatform) {
				t.Errorf("%s: %v, want ErrNoPlatform", tc.p, err)
			}
			continue
		}
		if err != nil || d.Digest.Hex[0] != tc.want {
			t.Errorf("%s: %v %v", tc.p, d.Digest, err)
		}
	}
}

func TestParseManifestAndDiffIDs(t *testing.T) {
	m := `{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":5,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222"}]}`
	mt, cfg, layers, err := ParseManifest([]byte(m), "")
	if err != nil || mt != MediaTypeOCIManifest || cfg.Digest.Hex[0] != '1' || len(layers) != 1 || layers[0].Size != 5 {
		t.Fatalf("ParseManifest: %v %v %v %v", mt, cfg, layers, err)
	}
	good := `{"rootfs":{"type":"layers","diff_ids":["sha256:3333333333333333333333333333333333333333333333333333333333333333"]}}`
	if err := AttachDiffIDs([]byte(good), layers); err != nil || layers[0].DiffID.Encoded()[0] != '3' {
		t.Fatalf("AttachDiffIDs: %v %v", layers, err)
	}
	for _, bad := range []string{`{"rootfs":{"diff_ids":[]}}`, `{"rootfs":{"diff_ids":["sha256:zz"]}}`, `not json`} {
		if err := AttachDiffIDs([]byte(bad), layers); !errors.Is(err, ErrBadManifest) {
			t.Errorf("AttachDiffIDs(%s): %v", bad, err)
		}
	}
	if _, _, _, err := ParseManifest([]byte(`{"schemaVersion":1,"mediaType":"application/vnd.docker.distribution.manifest.v1+json"}`), ""); !errors.Is(err, ErrUnsupported) {
		t.Errorf("schema 1: %v", err)
	}
}
