package image

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

func TestEveryFieldRoundTrips(t *testing.T) {
	d := digest.FromString("m")
	in := Image{
		ID: "i", Digest: d, Names: []string{"a"}, NamesHistory: []string{"a", "b"}, TopLayer: "l",
		MappedTopLayers: []string{"m"}, Metadata: "{}", BigDataNames: []string{"manifest"},
		BigDataSizes: map[string]int64{"manifest": 2}, BigDataDigests: map[string]digest.Digest{"manifest": d},
		Created: time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)), Flags: map[string]any{"k": 1.5},
	}
	data, _ := json.Marshal(in)
	var out Image
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Created.Equal(in.Created) {
		t.Fatalf("created %v", out.Created)
	}
	out.Created = in.Created
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n%+v\n%+v", in, out)
	}
}

func TestRecomputeDigests(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	img := &Image{ID: "x", BigDataNames: []string{"manifest", "config", "manifest-2"},
		BigDataDigests: map[string]digest.Digest{"manifest": a, "config": b, "manifest-2": a}}
	if err := RecomputeDigests(img); err != nil {
		t.Fatal(err)
	}
	if img.Digest != a || !reflect.DeepEqual(img.Digests, []digest.Digest{a}) {
		t.Fatalf("digest %v list %v", img.Digest, img.Digests)
	}
	img.BigDataDigests["manifest-2"] = "sha256:short"
	if err := RecomputeDigests(img); err == nil {
		t.Fatal("invalid manifest digest accepted")
	}
}
