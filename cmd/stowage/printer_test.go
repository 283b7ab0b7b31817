package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/stowage/stowage/container"
	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/layer"
)

func TestPrinterJSON(t *testing.T) {
	var out bytes.Buffer
	p := &printer{out: &out}
	if err := p.JSON(map[string]string{"b": "<&>", "a": ""}); err != nil {
		t.Fatal(err)
	}
	want := `{"a":"","b":"\u003c\u0026\u003e"}` + "\n"
	if out.String() != want {
		t.Errorf("JSON = %q, want %q", out.String(), want)
	}
}

func TestLayerTree(t *testing.T) {
	layers := []layer.Layer{
		{ID: "a", Names: []string{"base"}},
		{ID: "b", Parent: "a"},
		{ID: "c", Parent: "a", MountPoint: "/m"},
		{ID: "d", Parent: "b"},
		{ID: "e", Parent: "gone"},
	}
	byTop := map[string][]image.Image{"d": {{ID: "img", Names: []string{"i1"}}}}
	byLayer := map[string]container.Container{"c": {ID: "ctr", Names: []string{"c1"}}}
	var out bytes.Buffer
	printLayerTree(&out, layers, byTop, byLayer)
	want := strings.Join([]string{
		"(base)",
		"└─a",
		"  name: base",
		"  ├─b",
		"  │ └─d",
		"  │   image: img",
		"  │   image name: i1",
		"  └─c",
		"    mount: /m",
		"    container: ctr",
		"    container name: c1",
		"gone",
		"└─e",
		"",
	}, "\n")
	if out.String() != want {
		t.Errorf("tree:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestParseChown(t *testing.T) {
	tests := []struct {
		in      string
		want    *idPair
		wantErr string
	}{
		{"", nil, ""},
		{"5", &idPair{5, 5}, ""},
		{"5:7", &idPair{5, 7}, ""},
		{"x", nil, "bad UID"},
		{"1:y", nil, "bad GID"},
	}
	for _, tc := range tests {
		got, err := parseChown(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseChown(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseChown(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestIDMapFlags(t *testing.T) {
	dir := t.TempDir()
	oldU, oldG := subuidFile, subgidFile
	t.Cleanup(func() { subuidFile, subgidFile = oldU, oldG })
	subuidFile = filepath.Join(dir, "subuid")
	subgidFile = filepath.Join(dir, "subgid")
	os.WriteFile(subuidFile, []byte("# c\nalice:100000:65536\nbob:1:2\nalice:300000:10\n"), 0o644)
	os.WriteFile(subgidFile, []byte("alice:200000:65536\n"), 0o644)

	tests := []struct {
		name    string
		f       idMapFlags
		uid     []idmap.IDMap
		gid     []idmap.IDMap
		wantErr string
	}{
		{name: "explicit", f: idMapFlags{uidMap: "0:1000:1:1:2000:5", gidMap: "0:1:1"},
			uid: maps(0, 1000, 1, 1, 2000, 5), gid: maps(0, 1, 1)},
		{name: "host with explicit uid", f: idMapFlags{hostUID: true, uidMap: "0:1:1"},
			wantErr: "host uid map specified along with UID mapping"},
		{name: "host with explicit gid", f: idMapFlags{hostGID: true, subGID: "alice"},
			wantErr: "host gid map specified along with GID mapping"},
		{name: "malformed", f: idMapFlags{uidMap: "0:1"},
			wantErr: `initializing ID mappings: uid setting is malformed expected ["uint32:uint32:uint32"]: ["0:1"]`},
		{name: "subuid used for both", f: idMapFlags{subUID: "alice"},
			uid: maps(0, 100000, 65536, 65536, 300000, 10), gid: maps(0, 200000, 65536)},
		{name: "unknown user", f: idMapFlags{subUID: "carol"}, wantErr: `no subuid ranges found for "carol"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.f.options()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o.UIDMap, tc.uid) || !reflect.DeepEqual(o.GIDMap, tc.gid) {
				t.Errorf("maps = %v %v, want %v %v", o.UIDMap, o.GIDMap, tc.uid, tc.gid)
			}
		})
	}
}

// maps builds ID map ranges from (container, host, size) triples.
func maps(v ...int) []idmap.IDMap {
	var out []idmap.IDMap
	for i := 0; i+2 < len(v); i += 3 {
		out = append(out, idmap.IDMap{ContainerID: v[i], HostID: v[i+1], Size: v[i+2]})
	}
	return out
}

func TestLogging(t *testing.T) {
	old := slog.Default()
	t.Cleanup(func() { slog.SetDefault(old) })
	var buf bytes.Buffer
	setupLogging(&buf, false)
	slog.Debug("hidden")
	slog.Warn("hidden too")
	if buf.Len() != 0 {
		t.Fatalf("without --debug: %q", buf.String())
	}
	setupLogging(&buf, true)
	slog.Debug("Root: /x", "k", "v w")
	line := buf.String()
	if !strings.HasPrefix(line, `time="`) || !strings.HasSuffix(line, ` level=debug msg="Root: /x" k="v w"`+"\n") {
		t.Errorf("debug line %q", line)
	}
	// Attributes added before a group are not qualified by it.
	buf.Reset()
	slog.Default().With("a", 1).WithGroup("g").With("b", 2).WithGroup("h").Debug("m", "c", 3)
	if line := buf.String(); !strings.HasSuffix(line, ` msg=m a=1 g.b=2 g.h.c=3`+"\n") {
		t.Errorf("grouped line %q", line)
	}
}
