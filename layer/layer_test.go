package layer

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/internal/idmap"
)

func TestEveryFieldRoundTrips(t *testing.T) {
	in := Layer{
		ID: "a", Names: []string{"n"}, Parent: "p", Metadata: "m", MountLabel: "l",
		Created:          time.Date(2026, 11, 22, 10, 27, 17, 743341592, time.UTC),
		CompressedDigest: digest.FromString("c"), CompressedSize: 212,
		UncompressedDigest: digest.FromString("u"), TOCDigest: digest.FromString("t"), UncompressedSize: 10240,
		CompressionType: 2, UIDs: []uint32{0, 1000}, GIDs: []uint32{0, 1001},
		Flags:  map[string]any{"incomplete": true, "x.y": "z"},
		UIDMap: []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}, GIDMap: []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		BigDataNames: []string{"layer.data"},
	}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"created":"2026-11-22T10:27:17.743341592Z"`) || !strings.Contains(string(data), `"compression":2`) {
		t.Fatalf("encoding: %s", data)
	}
	var out Layer
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n%+v\n%+v", in, out)
	}
}

func TestIncomplete(t *testing.T) {
	for _, tc := range []struct {
		flags map[string]any
		want  bool
	}{
		{nil, false},
		{map[string]any{"incomplete": true}, true},
		{map[string]any{"incomplete": "true"}, false},
		{map[string]any{"incomplete": false}, false},
	} {
		if got := Incomplete(&Layer{Flags: tc.flags}); got != tc.want {
			t.Errorf("%v: %v", tc.flags, got)
		}
	}
}
