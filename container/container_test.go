package container

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/internal/idmap"
)

func TestEveryFieldRoundTrips(t *testing.T) {
	in := Container{
		ID: "c", Names: []string{"n"}, ImageID: "", LayerID: "l", Metadata: "m",
		BigDataNames: []string{"k"}, BigDataSizes: map[string]int64{"k": 1}, BigDataDigests: map[string]digest.Digest{"k": digest.FromString("k")},
		Created: time.Date(2026, 1, 1, 0, 0, 0, 1, time.UTC), UIDMap: []idmap.IDMap{{ContainerID: 0, HostID: 1, Size: 2}},
		GIDMap: []idmap.IDMap{{ContainerID: 0, HostID: 1, Size: 2}}, Flags: map[string]any{"MountLabel": "", "ProcessLabel": ""},
	}
	data, _ := json.Marshal(in)
	if !strings.Contains(string(data), `"image":""`) {
		t.Fatalf("image must not be omitted: %s", data)
	}
	var out Container
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n%+v\n%+v", in, out)
	}
}

func TestLookupOrder(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: filepath.Join(dir, "c")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	unlock, err := s.LockWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	a := &Container{ID: "aaaa1", Names: []string{"bbbb2"}, LayerID: "L1"}
	b := &Container{ID: "bbbb2", LayerID: "L2"}
	for _, c := range []*Container{a, b} {
		if err := s.Add(c); err != nil {
			t.Fatal(err)
		}
	}
	for key, want := range map[string]string{"bbbb2": "bbbb2", "L1": "aaaa1", "aaa": "aaaa1", "bbbb": "bbbb2"} {
		if c, ok := s.Lookup(key); !ok || c.ID != want {
			t.Errorf("Lookup(%q) = %v %v, want %s", key, c, ok, want)
		}
	}
}
