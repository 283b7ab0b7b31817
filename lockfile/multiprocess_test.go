package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stowage/stowage/internal/testutil"
)

// childEnv makes the re-executed test binary act as a lock-holding child:
// "<mode> <path>", mode one of lock, rlock, trylock, record.
const childEnv = "STOWAGE_LOCKFILE_TEST_CHILD"

func TestMain(m *testing.M) { testutil.Main(m, childEnv, runChild) }

// runChild prints "waiting", takes the lock, prints "holding" (record also
// prints the token it wrote), waits for "release" on stdin, unlocks.
func runChild(spec string) int {
	mode, path, ok := strings.Cut(spec, " ")
	if !ok {
		fmt.Fprintln(os.Stderr, "bad child spec", spec)
		return 2
	}
	if mode == "incr" {
		return runIncrement(path, os.Getenv(childEnv+"_COUNTER"))
	}
	fmt.Println("waiting")
	var unlock func()
	switch mode {
	case "lock", "rlock", "record":
		f, err := Get(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		lock := f.Lock
		if mode == "rlock" {
			lock = f.RLock
		}
		if err := lock(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if mode == "record" {
			lw, err := f.RecordWrite()
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			fmt.Println("token", lw.String())
		}
		unlock = f.Unlock
	case "trylock":
		h, err := TryLock(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		unlock = func() { _ = h.Release() }
	default:
		fmt.Fprintln(os.Stderr, "bad child mode", mode)
		return 2
	}
	fmt.Println("holding")
	testutil.AwaitRelease()
	unlock()
	fmt.Println("released")
	return 0
}

// incrementRounds is how often each process bumps the shared counter.
const incrementRounds = 200

// runIncrement bumps the decimal counter in counterPath incrementRounds
// times, each a read-modify-write under the write lock on lockPath.
func runIncrement(lockPath, counterPath string) int {
	f, err := Get(lockPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for range incrementRounds {
		if err := f.Lock(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		err := bumpCounter(counterPath)
		f.Unlock()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}

func bumpCounter(path string) error {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	n := 0
	if len(b) > 0 {
		if n, err = strconv.Atoi(string(b)); err != nil {
			return err
		}
	}
	// Write in place (no rename) so a racing reader could see a torn value.
	return os.WriteFile(path, []byte(strconv.Itoa(n+1)), 0o644)
}

// TestMultiProcessCounter runs read-modify-write rounds from three
// processes and this one; any overlap of write holds would lose updates.
func TestMultiProcessCounter(t *testing.T) {
	dir := t.TempDir()
	lockPath, counter := filepath.Join(dir, "c.lock"), filepath.Join(dir, "counter")
	var cmds []*exec.Cmd
	for range 3 {
		cmd := testutil.Command(childEnv+"=incr "+lockPath, childEnv+"_COUNTER="+counter)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	if rc := runIncrement(lockPath, counter); rc != 0 {
		t.Fatal("parent increments failed")
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	b, err := os.ReadFile(counter)
	if err != nil {
		t.Fatal(err)
	}
	if want := strconv.Itoa(4 * incrementRounds); string(b) != want {
		t.Fatalf("counter %s, want %s: write holds overlapped", b, want)
	}
}

// startChild starts a lock-holding child and waits until it reports
// "waiting".
func startChild(t *testing.T, mode, path string) *testutil.Child {
	t.Helper()
	c := testutil.StartChild(t, childEnv+"="+mode+" "+path)
	c.Expect(t, "waiting", 10*time.Second)
	return c
}

// release lets the child unlock and exit, checking it says so.
func release(t *testing.T, c *testutil.Child) {
	t.Helper()
	c.Send(t, "release")
	c.Expect(t, "released", 10*time.Second)
	c.Wait(t)
}

func TestMultiProcessWriterWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layers.lock")
	c := startChild(t, "lock", path)
	c.Expect(t, "holding", 10*time.Second)
	f, err := Get(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, lock := range []func(context.Context) error{f.Lock, f.RLock} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := lock(ctx)
		cancel()
		var lwe *LockWaitError
		if !errors.As(err, &lwe) {
			t.Fatalf("lock while another process holds the write lock: %v, want LockWaitError", err)
		}
	}
	got := make(chan error, 1)
	go func() { got <- f.Lock(context.Background()) }() // owner: this test, which waits on got
	select {
	case err := <-got:
		t.Fatalf("Lock returned (%v) while the child holds it", err)
	case <-time.After(200 * time.Millisecond):
	}
	release(t, c)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Lock not granted after the child released")
	}
	// Now the child must wait for us.
	c2 := startChild(t, "rlock", path)
	c2.NotYet(t, 200*time.Millisecond)
	f.Unlock()
	c2.Expect(t, "holding", 5*time.Second)
	release(t, c2)
}

func TestMultiProcessReadersShare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "images.lock")
	c := startChild(t, "rlock", path)
	c.Expect(t, "holding", 10*time.Second)
	f, err := Get(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.RLock(ctx); err != nil {
		t.Fatalf("RLock while another process reads: %v", err)
	}
	// A second child reader shares too, while a writer child waits.
	c2 := startChild(t, "rlock", path)
	c2.Expect(t, "holding", 5*time.Second)
	w := startChild(t, "lock", path)
	w.NotYet(t, 200*time.Millisecond)
	f.Unlock()
	release(t, c)
	w.NotYet(t, 100*time.Millisecond)
	release(t, c2)
	w.Expect(t, "holding", 5*time.Second)
	short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if err := f.RLock(short); err == nil {
		t.Fatal("RLock succeeded while a child holds the write lock")
	}
	release(t, w)
}

func TestMultiProcessTokenChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "containers.lock")
	f, err := Get(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := f.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	seen, err := f.LastWrite()
	f.Unlock()
	if err != nil || !seen.IsZero() {
		t.Fatalf("initial token %v, %v; want zero", seen, err)
	}
	c := startChild(t, "record", path)
	tokLine := c.Expect(t, "token ", 10*time.Second)
	c.Expect(t, "holding", 5*time.Second)
	release(t, c)
	if err := f.RLock(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.Unlock()
	cur, changed, err := f.ModifiedSince(seen)
	if err != nil {
		t.Fatal(err)
	}
	if !changed || "token "+cur.String() != tokLine {
		t.Fatalf("after child write: changed=%v token %s, child wrote %q", changed, cur, tokLine)
	}
	if _, changed, _ := f.ModifiedSince(cur); changed {
		t.Fatal("token reported changed against itself")
	}
}

func TestMultiProcessTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock-42")
	c := startChild(t, "trylock", path)
	c.Expect(t, "holding", 10*time.Second)
	if _, err := TryLock(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock held by child: %v, want ErrLocked", err)
	}
	// A killed owner's lock is free at once.
	c.Kill()
	h, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after owner died: %v", err)
	}
	_ = h.Release()
}

// TestBlocksContainersStorage checks that our write lock excludes the
// reference implementation, which takes classic POSIX locks.
func TestBlocksContainersStorage(t *testing.T) {
	bin, err := exec.LookPath("containers-storage")
	if err != nil {
		t.Skip("containers-storage binary not installed: cannot test interop")
	}
	dir := t.TempDir()
	root, run := filepath.Join(dir, "root"), filepath.Join(dir, "run")
	f, err := Get(filepath.Join(root, "vfs-layers", "layers.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--graph", root, "--run", run, "--storage-driver", "vfs", "layers")
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }() // owner: this test, which waits on done
	select {
	case err := <-done:
		f.Unlock()
		t.Fatalf("containers-storage finished (%v) while we held layers.lock: %s", err, out)
	case <-time.After(time.Second):
	}
	f.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("containers-storage after release: %v: %s", err, out)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("containers-storage still blocked after we released layers.lock")
	}
}
