package archive

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// A regular file is read through raw calls, byte for byte, to io.EOF; a
// pipe (which may wait for a writer in this process) is not.
func TestRegularFileReader(t *testing.T) {
	data := bytes.Repeat([]byte("layer bytes "), 100000)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := regularFileReader(f)
	if _, ok := r.(rawFileReader); !ok {
		t.Fatalf("regular file read through %T, want rawFileReader", r)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, err %v; want %d bytes", len(got), err, len(data))
	}
	if n, err := r.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read at the end: %d, %v; want 0, io.EOF", n, err)
	}

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if r := regularFileReader(pr); r != io.Reader(pr) {
		t.Fatalf("pipe read through %T, want the *os.File itself", r)
	}
	if r := regularFileReader(bytes.NewReader(data)); r == nil {
		t.Fatal("nil reader")
	}
}
