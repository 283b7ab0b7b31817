package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/tarsplit"
)

// FuzzUnpack feeds arbitrary bytes to Unpack: it must never panic and
// never write outside dest (checked with a sentinel dir next to it). When
// it succeeds, Reassemble must not panic.
//
// Run with minimization off: Unpack's background goroutines (hashers,
// tar-split recorder, parallel gzip) make coverage vary from run to run, so
// the engine would spend all its time minimizing "new" inputs:
//
//	go test ./archive -run '^$' -fuzz FuzzUnpack -fuzzminimizetime 0s
func FuzzUnpack(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("junk"))
	f.Add(makeTar(f, tar.FormatPAX, 0, file("a", "x", 0o644), symlink("l", "/"), file("l/b", "y", 0o644)))
	f.Add(makeTar(f, tar.FormatUnknown, 0, file("../x", "x", 0o644), hardlink("h", "../sentinel/victim"), file(".wh...", "", 0o644)))
	f.Add(makeTar(f, tar.FormatGNU, 512, dir("d/", 0o755), file("d/.wh..wh..opq", "", 0o644), symlink("d/up", "../../sentinel")))
	f.Add(compressWith(f, "gzip", makeTar(f, tar.FormatUnknown, 0, file("a", "x", 0o644))))
	f.Fuzz(func(t *testing.T, data []byte) {
		base, err := os.MkdirTemp("", "stowage-fuzz")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(base)
		dest := filepath.Join(base, "dest")
		sentinel := filepath.Join(base, "sentinel")
		os.Mkdir(dest, 0o755)
		os.Mkdir(sentinel, 0o755)
		os.WriteFile(filepath.Join(sentinel, "victim"), []byte("intact"), 0o644)
		for _, mode := range []archive.WhiteoutFormat{archive.WhiteoutDelete, archive.WhiteoutOverlay} {
			var ts bytes.Buffer
			res, err := archive.Unpack(context.Background(), dest, bytes.NewReader(data), archive.UnpackOptions{
				TarSplit: &ts, IgnoreChownErrors: true, Whiteouts: mode, OpaqueXattr: "user.overlay.opaque"})
			checkSandbox(t, dest, sentinel)
			if err == nil && res.Compression == archive.Uncompressed && mode == archive.WhiteoutDelete {
				// Reassembly may fail if later entries replaced earlier
				// files, but it must not panic.
				var out bytes.Buffer
				_ = tarsplit.Reassemble(context.Background(), &out, &ts, tarsplit.DirOpener(dest))
			}
			os.RemoveAll(dest)
			os.Mkdir(dest, 0o755)
		}
	})
}
