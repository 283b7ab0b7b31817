package staging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stowage/stowage/internal/testutil"
)

const childEnv = "STOWAGE_STAGING_TEST_CHILD"

func TestMain(m *testing.M) { testutil.Main(m, childEnv, runChild) }

// runChild creates a temp dir with an addition in it, prints "holding
// <path>", and waits for "release" on stdin before cleaning up.
func runChild(root string) int {
	d, err := New(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(d.Addition(), []byte("data"), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("holding", d.Path())
	testutil.AwaitRelease()
	if err := d.Cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func TestNewLayout(t *testing.T) {
	root := filepath.Join(t.TempDir(), "layers", "tmp")
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(root); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("root: %v %v, want 0700 dir", fi, err)
	}
	got := names(t, root)
	if len(got) != 2 {
		t.Fatalf("root holds %v, want lock-<n> and temp-dir-<n>", got)
	}
	n := strings.TrimPrefix(got[0], "lock-")
	if got[0] == n || got[1] != "temp-dir-"+n || strings.Trim(n, "0123456789") != "" {
		t.Fatalf("root holds %v, want lock-<n> and temp-dir-<n> with decimal n", got)
	}
	if d.Path() != filepath.Join(root, got[1]) || d.Root() != root {
		t.Errorf("Path %s Root %s", d.Path(), d.Root())
	}
	if fi, err := os.Stat(d.Path()); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("temp dir: %v %v, want 0700", fi, err)
	}
	d2, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Path() == d.Path() {
		t.Fatal("two Dirs share a path")
	}
	for _, x := range []*Dir{d, d2} {
		if err := x.Cleanup(); err != nil {
			t.Fatal(err)
		}
	}
	if got := names(t, root); len(got) != 0 {
		t.Errorf("root holds %v after Cleanup", got)
	}
}

func TestAdditionsAndDeletions(t *testing.T) {
	tmp := t.TempDir()
	d, err := New(filepath.Join(tmp, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	a0 := d.Addition()
	if a0 != filepath.Join(d.Path(), "0-addition") {
		t.Errorf("first addition %s", a0)
	}
	if _, err := os.Lstat(a0); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Addition created its path: %v", err)
	}
	victim := filepath.Join(tmp, "layerdir")
	if err := os.MkdirAll(filepath.Join(victim, "diff"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.StageDeletion(victim); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staged path still in place: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.Path(), "1-layerdir", "diff")); err != nil {
		t.Errorf("staged deletion not in temp dir: %v", err)
	}
	if a2 := d.Addition(); filepath.Base(a2) != "2-addition" {
		t.Errorf("third name %s, want 2-addition", a2)
	}
	if err := d.StageDeletion(filepath.Join(tmp, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staging a missing path: %v", err)
	}
	if err := d.StageDeletion("/"); err == nil {
		t.Error("staging / succeeded")
	}
	if err := d.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := d.Cleanup(); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
	if err := d.StageDeletion(tmp); !errors.Is(err, ErrCleanedUp) {
		t.Errorf("StageDeletion after Cleanup: %v", err)
	}
	if got := names(t, filepath.Join(tmp, "tmp")); len(got) != 0 {
		t.Errorf("root holds %v after Cleanup", got)
	}
}

func TestRecoverStaleSkipsLiveInProcess(t *testing.T) {
	root := t.TempDir()
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Cleanup()
	if err := RecoverStale(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.Path()); err != nil {
		t.Fatalf("RecoverStale removed a live temp dir: %v", err)
	}
}

func TestRecoverStaleRemovesOrphans(t *testing.T) {
	root := t.TempDir()
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	touch := func(p string) {
		if err := os.WriteFile(filepath.Join(root, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("temp-dir-5/0-addition/sub") // dir without a lock
	if err := os.Chmod(filepath.Join(root, "temp-dir-5", "0-addition"), 0o555); err != nil {
		t.Fatal(err)
	}
	touch("lock-6") // lock without a dir
	mk("temp-dir-7/1-x")
	touch("lock-7")    // an unheld pair
	touch("unrelated") // not ours
	mk("other-dir")    // not ours
	if err := RecoverStale(root); err != nil {
		t.Fatal(err)
	}
	if got := names(t, root); strings.Join(got, ",") != "other-dir,unrelated" {
		t.Fatalf("after recovery root holds %v", got)
	}
	if err := RecoverStale(filepath.Join(root, "missing")); err != nil {
		t.Errorf("missing root: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(""); err == nil {
		t.Error("New(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(filepath.Join(file, "tmp")); err == nil {
		t.Error("New under a regular file succeeded")
	}
}

// child is a re-executed test binary holding a temp dir.
type child struct {
	*testutil.Child
	path string
}

// startChild starts a child and waits for its first line, which must be
// "holding <temp dir>".
func startChild(t *testing.T, root string) *child {
	t.Helper()
	c := testutil.StartChild(t, childEnv+"="+root)
	l := c.Next(t, 10*time.Second)
	p, ok := strings.CutPrefix(l, "holding ")
	if !ok {
		t.Fatalf("child said %q", l)
	}
	return &child{Child: c, path: p}
}

func TestRecoverStaleAcrossProcesses(t *testing.T) {
	root := t.TempDir()
	live := startChild(t, root)
	doomed := startChild(t, root)
	if err := RecoverStale(root); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*child{live, doomed} {
		if _, err := os.Stat(filepath.Join(c.path, "0-addition")); err != nil {
			t.Fatalf("RecoverStale touched a live process's temp dir: %v", err)
		}
	}
	doomed.Kill()
	if err := RecoverStale(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(doomed.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("killed child's temp dir survived recovery: %v", err)
	}
	if _, err := os.Stat(live.path); err != nil {
		t.Errorf("live child's temp dir removed: %v", err)
	}
	if got := names(t, root); len(got) != 2 {
		t.Errorf("root holds %v, want only the live child's pair", got)
	}
	live.Send(t, "release")
	live.Wait(t)
	if got := names(t, root); len(got) != 0 {
		t.Errorf("root holds %v after the live child cleaned up", got)
	}
}
