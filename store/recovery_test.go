package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stowage/stowage/driver/drivertest"
	"github.com/stowage/stowage/internal/testutil"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/lockfile"
)

const childEnv = "STOWAGE_STORE_TEST_CHILD"

func TestMain(m *testing.M) { testutil.Main(m, childEnv, runChild) }

// runChild runs one store operation in a child process. spec is
// "<op>|<graph>|<run>|<driver>|<arg>":
//   - put-block: PutLayer of a tar whose stream stops half-way (after
//     printing "blocked") until "release" arrives; prints "done <id>".
//   - put-commit-block: PutLayer of layer <arg> that stops (printing
//     "committed") once the staged tree and tar-split are in place,
//     before the record is completed, until "release" arrives.
//   - delete: prints "deleting", deletes layer <arg>, prints "deleted".
//   - rlock: read-locks <arg> (a lock file), prints "locked", waits for
//     "release".
func runChild(spec string) int {
	parts := strings.SplitN(spec, "|", 5)
	if len(parts) != 5 {
		fmt.Fprintln(os.Stderr, "bad child spec", spec)
		return 2
	}
	op, arg := parts[0], parts[4]
	ctx := context.Background()
	if op == "rlock" {
		f, err := lockfile.Get(arg)
		if err == nil {
			err = f.RLock(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("locked")
		testutil.AwaitRelease()
		f.Unlock()
		return 0
	}
	s, err := Open(ctx, Options{GraphRoot: parts[1], RunRoot: parts[2], GraphDriverName: parts[3]})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch op {
	case "put-block":
		l, err := s.PutLayer(ctx, &blockingReader{data: bigTar(64, 64<<10)}, LayerOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("done", l.ID)
	case "put-commit-block":
		testHookCommitted = func() {
			fmt.Println("committed")
			testutil.AwaitRelease()
		}
		l, err := s.PutLayer(ctx, bytes.NewReader(bigTar(4, 1024)), LayerOptions{ID: arg})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("done", l.ID)
	case "delete":
		fmt.Println("deleting")
		if err := s.DeleteLayer(ctx, arg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println("deleted")
	default:
		fmt.Fprintln(os.Stderr, "unknown child op", op)
		return 2
	}
	return 0
}

// blockingReader serves data, stopping at the half-way mark once: it
// prints "blocked" and waits for "release" on stdin.
type blockingReader struct {
	data    []byte
	off     int
	blocked bool
}

func (r *blockingReader) Read(p []byte) (int, error) {
	half := len(r.data) / 2
	if !r.blocked && r.off >= half {
		r.blocked = true
		fmt.Println("blocked")
		testutil.AwaitRelease()
	}
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	end := len(r.data)
	if !r.blocked {
		end = half
	}
	n := copy(p, r.data[r.off:end])
	r.off += n
	return n, nil
}

// bigTar returns a tar of n regular files of size bytes each.
func bigTar(n, size int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := bytes.Repeat([]byte("x"), size)
	for i := range n {
		hdr := &tar.Header{Name: fmt.Sprintf("d%d/f%d", i%8, i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(err)
		}
		if _, err := tw.Write(body); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func childSpec(op, graph, run, drv, arg string) string {
	return childEnv + "=" + strings.Join([]string{op, graph, run, drv, arg}, "|")
}

// entries lists dir's entries (none if it does not exist).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// tempRoots are the staging roots of a store: the layer store's tmp and
// the driver's tempdirs.
func tempRoots(g, drv string) []string {
	return []string{filepath.Join(g, drv+"-layers", "tmp"), filepath.Join(g, drv, "tempdirs")}
}

func storeDrivers(t *testing.T) []string {
	drvs := []string{"vfs"}
	if os.Geteuid() == 0 {
		drvs = append(drvs, "overlay")
	}
	return drvs
}

// A process killed while extracting a layer leaves staging that the next
// open removes, and no layer.
func TestKilledPutLayerRecovered(t *testing.T) {
	for _, drv := range storeDrivers(t) {
		t.Run(drv, func(t *testing.T) {
			if drv == "overlay" {
				drivertest.RequireOverlay(t)
			}
			dir := t.TempDir()
			g, r := filepath.Join(dir, "g"), filepath.Join(dir, "r")
			c := testutil.StartChild(t, childSpec("put-block", g, r, drv, ""))
			c.Expect(t, "blocked", time.Minute)
			for _, root := range tempRoots(g, drv) {
				if len(entries(t, root)) == 0 {
					t.Fatalf("no live staging under %s while the child extracts", root)
				}
			}
			c.Kill()
			s, err := Open(testCtx(t), Options{GraphRoot: g, RunRoot: r, GraphDriverName: drv})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = s.Shutdown(testCtx(t), true) }()
			for _, root := range tempRoots(g, drv) {
				if left := entries(t, root); len(left) != 0 {
					t.Errorf("%s still holds %v after open", root, left)
				}
			}
			if ls, err := s.Layers(testCtx(t)); err != nil || len(ls) != 0 {
				t.Errorf("layers after the killed import: %v, %v", ls, err)
			}
		})
	}
}

// startBlockedCommit starts a child that puts layer id in place on drv
// and blocks before saving its record (testHookCommitted). It returns the
// child, the store's roots and the layer's directory and tar-split.
func startBlockedCommit(t *testing.T, drv, id string) (c *testutil.Child, g, r, layerDir, tsPath string) {
	t.Helper()
	if drv == "overlay" {
		drivertest.RequireOverlay(t)
	}
	dir := t.TempDir()
	g, r = filepath.Join(dir, "g"), filepath.Join(dir, "r")
	c = testutil.StartChild(t, childSpec("put-commit-block", g, r, drv, id))
	c.Expect(t, "committed", time.Minute)
	layerDir = map[string]string{"vfs": filepath.Join(g, "vfs", "dir", id), "overlay": filepath.Join(g, "overlay", id)}[drv]
	return c, g, r, layerDir, filepath.Join(g, drv+"-layers", id+".tar-split.gz")
}

// A process killed in the middle of a commit (the layer's directory and
// tar-split in place, the record not yet saved) leaves its commit marker,
// and the next open removes the layer and the marker entirely.
func TestKilledCommitRecovered(t *testing.T) {
	const id = "aaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccddddaaaabbbbccccdddd"
	for _, drv := range storeDrivers(t) {
		t.Run(drv, func(t *testing.T) {
			c, g, r, layerDir, tsPath := startBlockedCommit(t, drv, id)
			for _, p := range []string{layerDir, tsPath} {
				if _, err := os.Stat(p); err != nil {
					t.Fatalf("the child is past the driver commit, but: %v", err)
				}
			}
			marker := filepath.Join(g, drv+"-layers", "tmp", "commit-"+id)
			if _, err := os.Stat(marker); err != nil {
				t.Fatalf("no commit marker: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(g, drv+"-layers", "layers.json")); strings.Contains(string(b), id) {
				t.Fatalf("layers.json names the layer before its commit: %s", b)
			}
			c.Kill()
			s, err := Open(testCtx(t), Options{GraphRoot: g, RunRoot: r, GraphDriverName: drv})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = s.Shutdown(testCtx(t), true) }()
			if ls, err := s.Layers(testCtx(t)); err != nil || len(ls) != 0 {
				t.Errorf("layers after the killed commit: %v, %v", ls, err)
			}
			for _, p := range []string{layerDir, tsPath} {
				if _, err := os.Lstat(p); !os.IsNotExist(err) {
					t.Errorf("%s left after recovery (%v)", p, err)
				}
			}
			if _, err := os.Lstat(marker); !os.IsNotExist(err) {
				t.Errorf("commit marker left after recovery (%v)", err)
			}
			if drv == "overlay" {
				if left := entries(t, filepath.Join(g, "overlay", "l")); len(left) != 0 {
					t.Errorf("l/ links left: %v", left)
				}
			}
		})
	}
}

// Opening the store, and committing another layer, while a second process
// is half-way through an import leaves that process's staging alone; it
// then commits its layer.
func TestLiveStagingNotDisturbed(t *testing.T) {
	for _, drv := range storeDrivers(t) {
		t.Run(drv, func(t *testing.T) {
			if drv == "overlay" {
				drivertest.RequireOverlay(t)
			}
			dir := t.TempDir()
			g, r := filepath.Join(dir, "g"), filepath.Join(dir, "r")
			c := testutil.StartChild(t, childSpec("put-block", g, r, drv, ""))
			c.Expect(t, "blocked", time.Minute)
			before := map[string][]string{}
			for _, root := range tempRoots(g, drv) {
				before[root] = entries(t, root)
			}
			s, err := Open(testCtx(t), Options{GraphRoot: g, RunRoot: r, GraphDriverName: drv})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = s.Shutdown(testCtx(t), true) }()
			mine, err := s.PutLayer(testCtx(t), bytes.NewReader(makeTar(t, map[string]string{"x": "1"})), LayerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for root, want := range before {
				got := entries(t, root)
				for _, e := range want {
					if !slices.Contains(got, e) {
						t.Errorf("%s/%s of the live import was removed", root, e)
					}
				}
			}
			c.Send(t, "release")
			line := c.Expect(t, "done ", time.Minute)
			c.Wait(t)
			id := strings.TrimPrefix(line, "done ")
			ls, err := s.Layers(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, l := range ls {
				ids = append(ids, l.ID)
			}
			if !slices.Contains(ids, id) || !slices.Contains(ids, mine.ID) {
				t.Errorf("layers %v, want both %s and %s", ids, id, mine.ID)
			}
		})
	}
}

// Temp JSON files of writers that died mid-save are removed at open, and
// only under the table's write lock: while another process holds the
// read lock, open waits and the files stay.
func TestStaleTempJSONRemovedUnderWriteLock(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	if _, err := s.CreateLayer(ctx, LayerOptions{}); err != nil {
		t.Fatal(err)
	}
	ldir := filepath.Join(opts.GraphRoot, "vfs-layers")
	planted := []string{
		filepath.Join(ldir, ".tmp-layers.json123456"),
		filepath.Join(ldir, ".tmp-volatile-layers.json9"),
		filepath.Join(opts.GraphRoot, "vfs-images", ".tmp-images.json77"),
		filepath.Join(opts.GraphRoot, "vfs-containers", ".tmp-containers.json1"),
		filepath.Join(opts.RunRoot, "vfs-layers", ".tmp-mountpoints.json5"),
	}
	keep := filepath.Join(ldir, ".tmp-unrelated")
	for _, p := range append(planted, keep) {
		if err := os.WriteFile(p, []byte("[{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := testutil.StartChild(t, childSpec("rlock", "", "", "", filepath.Join(ldir, "layers.lock")))
	c.Expect(t, "locked", time.Minute)
	opened := make(chan error, 1)
	go func() { // owner: this test; joined through opened
		s2, err := Open(ctx, opts)
		if err == nil {
			s2.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("open finished while another process held layers.lock for reading: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := os.Stat(planted[0]); err != nil {
		t.Fatalf("temp file removed without the write lock: %v", err)
	}
	c.Send(t, "release")
	c.Wait(t)
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	for _, p := range planted {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there after open (%v)", p, err)
		}
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("a file that is no table's temp was removed: %v", err)
	}
}

// A process killed at a random moment while deleting a layer leaves a
// store that, once opened, has the layer either complete or entirely gone:
// records and driver directories agree and no staging is left.
func TestKilledDeleteLayerConsistent(t *testing.T) {
	for _, drv := range storeDrivers(t) {
		t.Run(drv, func(t *testing.T) {
			if drv == "overlay" {
				drivertest.RequireOverlay(t)
			}
			blob := bigTar(600, 512)
			gone := 0
			for round := range 3 {
				dir := t.TempDir()
				g, r := filepath.Join(dir, "g"), filepath.Join(dir, "r")
				opts := Options{GraphRoot: g, RunRoot: r, GraphDriverName: drv}
				s, err := Open(testCtx(t), opts)
				if err != nil {
					t.Fatal(err)
				}
				l, err := s.PutLayer(testCtx(t), bytes.NewReader(blob), LayerOptions{})
				if err != nil {
					t.Fatal(err)
				}
				c := testutil.StartChild(t, childSpec("delete", g, r, drv, l.ID))
				c.Expect(t, "deleting", time.Minute)
				time.Sleep(time.Duration(rand.IntN(30)+round*5) * time.Millisecond)
				c.Kill()
				s2, err := Open(testCtx(t), opts)
				if err != nil {
					t.Fatal(err)
				}
				ls, err := s2.Layers(testCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				dirs, err := s2.StorageLayers(testCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case len(ls) == 0 && len(dirs) == 0:
					gone++
				case len(ls) == 1 && len(dirs) == 1 && ls[0].ID == l.ID && dirs[0] == l.ID:
					rc, err := s2.Diff(testCtx(t), "", l.ID, DiffOptions{})
					if err != nil {
						t.Fatalf("round %d: surviving layer cannot be diffed: %v", round, err)
					}
					got, err := io.ReadAll(rc)
					rc.Close()
					if err != nil || !bytes.Equal(got, blob) {
						t.Fatalf("round %d: surviving layer is damaged (%d bytes, %v)", round, len(got), err)
					}
				default:
					t.Fatalf("round %d: records %v and driver dirs %v disagree", round, ls, dirs)
				}
				for _, root := range tempRoots(g, drv) {
					if left := entries(t, root); len(left) != 0 {
						t.Errorf("round %d: %s still holds %v", round, root, left)
					}
				}
				_, _ = s2.Shutdown(testCtx(t), true)
			}
			t.Logf("%s: layer gone in %d of 3 rounds, intact in the others", drv, gone)
		})
	}
}

// Commit markers seen at a load: one naming a layer with a complete record
// (a process killed after saving it, before removing the marker) only
// loses its marker; one naming a layer without a record loses the layer's
// driver directory and tar-split too.
func TestCommitMarkersRepairedAtLoad(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	kept, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1"})), LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const gone = "9999888877776666999988887777666699998888777766669999888877776666"
	if _, err := s.CreateStorageLayer(ctx, gone, "", LayerOptions{}); err != nil {
		t.Fatal(err)
	}
	ld := filepath.Join(opts.GraphRoot, "vfs-layers")
	if err := os.WriteFile(filepath.Join(ld, gone+".tar-split.gz"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{kept.ID, gone} {
		if err := os.WriteFile(filepath.Join(ld, "tmp", "commit-"+id), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2, err := Open(ctx, opts) // another process: loads, finds the markers
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	ls, err := s2.Layers(ctx)
	if err != nil || len(ls) != 1 || ls[0].ID != kept.ID {
		t.Fatalf("layers after repair: %v, %v", ls, err)
	}
	if got := entries(t, filepath.Join(ld, "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after repair: %v", got)
	}
	for _, p := range []string{filepath.Join(opts.GraphRoot, "vfs", "dir", gone), filepath.Join(ld, gone+".tar-split.gz")} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived the repair (%v)", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(opts.GraphRoot, "vfs", "dir", kept.ID)); err != nil {
		t.Errorf("the complete layer lost its directory: %v", err)
	}
}

// A commit in progress in another process (its files in place, no record
// yet, its marker locked) is left alone by an open, check, repair and gc
// of this one; the commit then completes.
func TestLiveCommitNotDisturbed(t *testing.T) {
	const id = "5555bbbbccccddddaaaabbbbccccddddaaaabbbbccccddddaaaabbbbcccc5555"
	for _, drv := range storeDrivers(t) {
		t.Run(drv, func(t *testing.T) {
			c, g, r, layerDir, tsPath := startBlockedCommit(t, drv, id)
			s, err := Open(testCtx(t), Options{GraphRoot: g, RunRoot: r, GraphDriverName: drv})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = s.Shutdown(testCtx(t), true) }()
			ctx := testCtx(t)
			if ls, err := s.Layers(ctx); err != nil || len(ls) != 0 {
				t.Fatalf("layers during the commit: %v, %v", ls, err)
			}
			rep, err := s.Check(ctx, CheckOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if errs := rep.layerErrs(id); len(errs) > 0 {
				t.Errorf("check reports the layer being committed: %v", errs)
			}
			if _, errs := s.Repair(ctx, RepairOptions{}); len(errs) > 0 {
				t.Fatal(errs)
			}
			removed, err := s.GC(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range removed {
				if strings.Contains(p, id) {
					t.Errorf("gc removed %s of the layer being committed", p)
				}
			}
			for _, p := range []string{layerDir, tsPath} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("the live commit's %s was removed: %v", p, err)
				}
			}
			c.Send(t, "release")
			c.Expect(t, "done "+id, time.Minute)
			c.Wait(t)
			l, err := s.Layer(ctx, id)
			if err != nil {
				t.Fatalf("the layer after its commit: %v", err)
			}
			if l.UncompressedDigest == "" {
				t.Errorf("the committed record has no digest: %+v", l)
			}
			rep, err = s.Check(ctx, CheckOptions{MaxUnreferencedAge: DefaultMaxUnreferencedAge})
			if err != nil || !rep.Empty() {
				t.Errorf("check after the commit: %+v, %v", rep, err)
			}
			if got := entries(t, filepath.Join(g, drv+"-layers", "tmp")); len(got) != 0 {
				t.Errorf("tmp/ after the commit: %v", got)
			}
		})
	}
}

// Another writer saving layers.json between a commit's prepare and its
// rename makes the commit prepare again: both layers stay recorded (the
// stale prepared file would have dropped the other one).
func TestCommitRetriesAfterConcurrentSave(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	var other *layer.Layer
	var otherErr error
	testHookCommitted = func() {
		testHookCommitted = nil // the nested commit must not recurse
		other, otherErr = s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"o": "1"})), LayerOptions{Names: []string{"other"}})
	}
	t.Cleanup(func() { testHookCommitted = nil })
	mine, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"m": "1"})), LayerOptions{Names: []string{"mine"}})
	if err != nil {
		t.Fatal(err)
	}
	if otherErr != nil {
		t.Fatal(otherErr)
	}
	s2, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for _, l := range []*layer.Layer{mine, other} {
		got, err := s2.Layer(ctx, l.ID)
		if err != nil || got.UncompressedDigest != l.UncompressedDigest {
			t.Errorf("layer %s after both commits: %+v, %v", l.ID, got, err)
		}
	}
	if got := entries(t, filepath.Join(opts.GraphRoot, "vfs-layers", "tmp")); len(got) != 0 {
		t.Errorf("tmp/ after the commits: %v", got)
	}
}

// A dead commit marker of a layer whose record is complete (a process
// killed after its rename, before removing the marker) is removed by the
// next writer without saving the records: a save would move the token
// and make every commit in flight prepare again.
func TestCompleteMarkerRemovedWithoutSave(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	l, err := s.PutLayer(ctx, bytes.NewReader(makeTar(t, map[string]string{"a": "1"})), LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ld := filepath.Join(opts.GraphRoot, "vfs-layers")
	marker := filepath.Join(ld, "tmp", "commit-"+l.ID)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(filepath.Join(ld, "layers.lock"))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, opts) // another process: loads, finds the marker
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Layer(ctx, l.ID); err != nil {
		t.Fatalf("the complete layer after the repair: %v", err)
	}
	if _, err := os.Lstat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("marker left: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(ld, "layers.lock"))
	if !bytes.Equal(before, after) {
		t.Errorf("removing the marker of a complete layer wrote a new token")
	}
}
