package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// withCloseTimes replaces the closer's futimens for one test.
func withCloseTimes(t *testing.T, fn func(fd int, ts *[2]unix.Timespec) error) {
	old := closeTimes
	closeTimes = fn
	t.Cleanup(func() { closeTimes = old })
}

func closerTestTar(t *testing.T, entries ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write(bytes.Repeat([]byte("y"), int(h.Size)))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCloserSetsTimesOfManyFiles(t *testing.T) {
	var hdrs []*tar.Header
	for i := range 3*closeBatch + 5 {
		hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeReg, Name: "f" + strconv.Itoa(i), Mode: 0o644, Size: int64(i % 7),
			ModTime: time.Unix(1600000000+int64(i), 0)})
	}
	dest := t.TempDir()
	if _, err := Unpack(context.Background(), dest, bytes.NewReader(closerTestTar(t, hdrs...)), UnpackOptions{IgnoreChownErrors: true}); err != nil {
		t.Fatal(err)
	}
	for i, h := range hdrs {
		st, err := os.Lstat(filepath.Join(dest, h.Name))
		if err != nil {
			t.Fatal(err)
		}
		if !st.ModTime().Equal(h.ModTime) || st.Size() != int64(i%7) {
			t.Fatalf("%s: mtime %v size %d, want %v %d", h.Name, st.ModTime(), st.Size(), h.ModTime, i%7)
		}
	}
}

func TestCloserHardLinkTimesWin(t *testing.T) {
	// A slow closer: without the drain before a hard link, the file's
	// queued times would land after the link entry's and win.
	withCloseTimes(t, func(fd int, ts *[2]unix.Timespec) error {
		time.Sleep(50 * time.Millisecond)
		return futimens(fd, ts)
	})
	fileTime, linkTime := time.Unix(1500000000, 0), time.Unix(1600000000, 0)
	data := closerTestTar(t,
		&tar.Header{Typeflag: tar.TypeReg, Name: "a", Mode: 0o644, Size: 3, ModTime: fileTime},
		&tar.Header{Typeflag: tar.TypeLink, Name: "b", Linkname: "a", Mode: 0o644, ModTime: linkTime})
	dest := t.TempDir()
	if _, err := Unpack(context.Background(), dest, bytes.NewReader(data), UnpackOptions{IgnoreChownErrors: true}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(filepath.Join(dest, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(linkTime) {
		t.Fatalf("mtime of the linked inode %v, want the link entry's %v", st.ModTime(), linkTime)
	}
}

func TestCloserErrorFailsUnpackAndClosesFiles(t *testing.T) {
	boom := unix.EIO
	withCloseTimes(t, func(int, *[2]unix.Timespec) error { return boom })
	var hdrs []*tar.Header
	for i := range 2 * closeBatch {
		hdrs = append(hdrs, &tar.Header{Typeflag: tar.TypeReg, Name: "f" + strconv.Itoa(i), Mode: 0o644, Size: 1})
	}
	before := openFDs(t)
	_, err := Unpack(context.Background(), t.TempDir(), bytes.NewReader(closerTestTar(t, hdrs...)), UnpackOptions{IgnoreChownErrors: true})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the futimens failure", err)
	}
	if after := openFDs(t); after > before {
		t.Fatalf("%d descriptors open after the failed unpack, %d before", after, before)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}
