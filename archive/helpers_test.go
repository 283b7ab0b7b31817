package archive_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// tarEntry is one entry of a generated test tar.
type tarEntry struct {
	hdr  tar.Header
	body string
}

var epoch = time.Unix(1700000000, 0)

func file(name, body string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: epoch}, body: body}
}

func dir(name string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: epoch}}
}

func symlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hardlink(name, target string) tarEntry {
	return tarEntry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: epoch}}
}

// makeTar builds a tar from entries, then appends pad zero bytes.
func makeTar(t testing.TB, format tar.Format, pad int, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if format != tar.FormatUnknown {
			h.Format = format
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("header %s: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	buf.Write(make([]byte, pad))
	return buf.Bytes()
}

// patchName replaces the USTAR name field of the header at offset off with
// raw bytes (e.g. non-UTF-8) and fixes the checksum.
func patchName(b []byte, off int, name []byte) {
	patchHeader(b, off, func(h []byte) {
		copy(h[0:100], make([]byte, 100))
		copy(h[0:100], name)
	})
}

// patchHeader edits the header block at off and fixes its checksum.
func patchHeader(b []byte, off int, edit func(h []byte)) {
	h := b[off : off+512]
	edit(h)
	copy(h[148:156], "        ")
	sum := 0
	for _, c := range h {
		sum += int(c)
	}
	s := strconv.FormatInt(int64(sum), 8)
	for len(s) < 6 {
		s = "0" + s
	}
	copy(h[148:156], s+"\x00 ")
}

func compressWith(t testing.TB, kind string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch kind {
	case "plain":
		return data
	case "gzip":
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
	case "zstd":
		zw, _ := zstd.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
	case "xz":
		zw, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		zw.Write(data)
		zw.Close()
	case "bzip2":
		if _, err := exec.LookPath("bzip2"); err != nil {
			t.Skip("bzip2 binary not installed: cannot make a bzip2 fixture")
		}
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	default:
		t.Fatalf("unknown compression %s", kind)
	}
	return buf.Bytes()
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown, mknod and trusted xattrs")
	}
}
