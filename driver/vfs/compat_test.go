package vfs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/drivertest"
)

// csLayers imports tars as a chain of layers with Debian's containers-storage
// (vfs) and returns the graph root and the layer IDs; it skips without it.
func csLayers(t *testing.T, tars ...[]byte) (graph string, ids []string) {
	t.Helper()
	cs, err := exec.LookPath("containers-storage")
	if err != nil {
		t.Skip("differential test needs the containers-storage binary")
	}
	if os.Geteuid() != 0 {
		t.Skip("containers-storage vfs import needs root")
	}
	dir := t.TempDir()
	graph = filepath.Join(dir, "graph")
	for i, data := range tars {
		f := filepath.Join(dir, fmt.Sprintf("%d.tar", i))
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"--graph", graph, "--run", filepath.Join(dir, "run"), "--storage-driver", "vfs", "import-layer", "-f", f}
		if i > 0 {
			args = append(args, ids[i-1])
		}
		out, err := exec.Command(cs, args...).Output()
		if err != nil {
			t.Fatalf("containers-storage import-layer: %v", err)
		}
		ids = append(ids, strings.TrimSpace(string(out)))
	}
	return graph, ids
}

// treeDesc describes a tree: per path type, mode, owner, size, mtime,
// content or target, and user.* xattrs.
func treeDesc(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o owner=%d:%d", st.Mode, st.Uid, st.Gid)
		if rel != "." {
			desc += " mtime=" + strconv.FormatInt(st.Mtim.Sec, 10)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" nlink=%d content=%q", st.Nlink, b)
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " target=" + target
		}
		buf := make([]byte, 256)
		if n, err := unix.Lgetxattr(p, "user.k", buf); err == nil {
			desc += " user.k=" + string(buf[:n])
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMatchesContainersStorage extracts the same layers with the reference
// and with this driver and requires identical trees, and reads the
// reference's layers with this driver (changes, diff size, OpenFile).
func TestMatchesContainersStorage(t *testing.T) {
	base := drivertest.Tar(t,
		drivertest.Entry{Name: "./", Type: '5', Mode: 0o755},
		drivertest.Entry{Name: "etc/", Type: '5', Mode: 0o750, UID: 10, GID: 20},
		drivertest.Entry{Name: "etc/conf", Body: "conf\n", Mode: 0o640, UID: 10, GID: 20, Xattrs: map[string]string{"user.k": "v"}},
		drivertest.Entry{Name: "etc/hard", Type: '1', Link: "etc/conf", Mode: 0o640, UID: 10, GID: 20},
		drivertest.Entry{Name: "bin/", Type: '5'},
		drivertest.Entry{Name: "bin/tool", Body: "#!/bin/sh\n", Mode: 0o4755},
		drivertest.Entry{Name: "bin/sh", Type: '2', Link: "tool"},
		drivertest.Entry{Name: "old/", Type: '5'},
		drivertest.Entry{Name: "old/x", Body: "x"},
		drivertest.Entry{Name: "opq/", Type: '5'},
		drivertest.Entry{Name: "opq/a", Body: "a"},
	)
	child := drivertest.Tar(t,
		drivertest.Entry{Name: ".wh.old"},
		drivertest.Entry{Name: "opq/", Type: '5'},
		drivertest.Entry{Name: "opq/.wh..wh..opq"},
		drivertest.Entry{Name: "opq/b", Body: "bb"},
		drivertest.Entry{Name: "new", Body: "new\n"},
		drivertest.Entry{Name: "lnk", Type: '2', Link: "new"},
	)
	graph, ids := csLayers(t, base, child)

	ours := newAt(t, driver.Options{Root: filepath.Join(t.TempDir(), "vfs")})
	for i, data := range [][]byte{base, child} {
		parent := ""
		if i > 0 {
			parent = "base"
		}
		id := []string{"base", "child"}[i]
		s, err := ours.StageDiff(bg, parent, bytes.NewReader(data), driver.ApplyOptions{}, driver.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ours.CommitStaged(bg, id, parent, s, driver.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want := treeDesc(t, filepath.Join(graph, "vfs", "dir", ids[i]))
		got := treeDesc(t, filepath.Join(ours.Home(), "dir", id))
		for p, w := range want {
			if got[p] != w {
				hint := ""
				if p == "." {
					hint = " (upstream applies a \"./\" tar entry's metadata to the layer root; archive.Unpack must too)"
				}
				t.Errorf("%s %s:\n ours %s\n  ref %s%s", id, p, got[p], w, hint)
			}
		}
		for p := range got {
			if _, ok := want[p]; !ok {
				t.Errorf("%s %s: only in ours (%s)", id, p, got[p])
			}
		}
	}

	// The reference's layers, read through this driver.
	ref := newAt(t, driver.Options{Root: filepath.Join(graph, "vfs")})
	changes, err := ref.Changes(bg, ids[1], ids[0])
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := exec.LookPath("containers-storage")
	out, err := exec.Command(cs, "--graph", graph, "--run", filepath.Join(filepath.Dir(graph), "run"),
		"--storage-driver", "vfs", "changes", "--json", ids[1], ids[0]).Output()
	if err != nil {
		t.Fatalf("containers-storage changes: %v", err)
	}
	var refChanges []archive.Change
	if err := json.Unmarshal(out, &refChanges); err != nil {
		t.Fatalf("parsing %s: %v", out, err)
	}
	norm := func(cs []archive.Change) string {
		var s []string
		for _, c := range cs {
			s = append(s, fmt.Sprintf("%s:%d", c.Path, c.Kind))
		}
		sort.Strings(s)
		return strings.Join(s, " ")
	}
	if norm(changes) != norm(refChanges) {
		t.Errorf("Changes\n ours %s\n  ref %s", norm(changes), norm(refChanges))
	}
	size, err := ref.DiffSize(bg, ids[1], ids[0])
	if err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(cs, "--graph", graph, "--run", filepath.Join(filepath.Dir(graph), "run"),
		"--storage-driver", "vfs", "diffsize", ids[1]).Output()
	if err != nil {
		t.Fatalf("containers-storage diffsize: %v", err)
	}
	if want := strings.TrimSpace(string(out)); strconv.FormatInt(size, 10) != want {
		t.Errorf("DiffSize %d, reference %s", size, want)
	}
	rc, err := ref.OpenFile(ids[0], "./etc/conf")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
}
