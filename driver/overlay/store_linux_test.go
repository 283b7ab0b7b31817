//go:build linux

package overlay_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stowage/stowage/driver/drivertest"
	"github.com/stowage/stowage/store"
)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	drivertest.RequireOverlay(t)
	ctx := context.Background()
	dir := t.TempDir()
	s, err := store.Open(ctx, store.Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: "overlay"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := s.Shutdown(ctx, true); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		s.Close()
	})
	return s
}

// Layers with whiteouts and opaque dirs go through the store's staged
// path and come back bit-identical from Diff; the mounted container sees
// the whiteouts applied.
func TestStoreRoundTrip(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	base := drivertest.Tar(t,
		drivertest.Entry{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		drivertest.Entry{Name: "etc/passwd", Body: "root:x:0:0\n", Mode: 0o644},
		drivertest.Entry{Name: "gone", Body: "g"},
		drivertest.Entry{Name: "opq/", Type: tar.TypeDir},
		drivertest.Entry{Name: "opq/old", Body: "o"},
	)
	child := drivertest.Tar(t,
		drivertest.Entry{Name: ".wh.gone"},
		drivertest.Entry{Name: "opq/", Type: tar.TypeDir},
		drivertest.Entry{Name: "opq/.wh..wh..opq"},
		drivertest.Entry{Name: "opq/new", Body: "n", UID: 1000, GID: 1000},
	)
	lb, err := s.PutLayer(ctx, bytes.NewReader(base), store.LayerOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := s.PutLayer(ctx, bytes.NewReader(child), store.LayerOptions{Parent: lb.ID, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		want []byte
	}{{lb.ID, base}, {lc.ID, child}} {
		rc, err := s.Diff(ctx, "", c.id, store.DiffOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, c.want) {
			t.Errorf("Diff of %s is not the imported tar (%d vs %d bytes)", c.id, len(got), len(c.want))
		}
	}
	top, err := s.CreateLayer(ctx, store.LayerOptions{Parent: lc.ID})
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Mount(ctx, top.ID, store.MountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(p, "gone")); !os.IsNotExist(err) {
		t.Errorf("whited-out file visible: %v", err)
	}
	if _, err := os.Stat(filepath.Join(p, "opq/old")); !os.IsNotExist(err) {
		t.Errorf("file under opaque dir visible: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(p, "etc/passwd")); err != nil || string(b) != "root:x:0:0\n" {
		t.Errorf("etc/passwd: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(p, "written"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unmount(ctx, top.ID, false); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Changes(ctx, "", top.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ch); got != "[A /written]" {
		t.Errorf("container changes %s", got)
	}
}

// BenchmarkMount100 mounts (and unmounts) a 100-layer image's top layer
// through the store's driver.
func BenchmarkMount100(b *testing.B) {
	s := openStore(b)
	ctx := context.Background()
	parent := ""
	for i := range 100 {
		l, err := s.PutLayer(ctx, bytes.NewReader(drivertest.Tar(b, drivertest.Entry{Name: fmt.Sprintf("f%d", i), Body: "x"})),
			store.LayerOptions{Parent: parent, ReadOnly: true})
		if err != nil {
			b.Fatal(err)
		}
		parent = l.ID
	}
	b.ResetTimer()
	var mountTime time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := s.Mount(ctx, parent, store.MountOptions{}); err != nil {
			b.Fatal(err)
		}
		mountTime += time.Since(start)
		if _, err := s.Unmount(ctx, parent, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(mountTime.Nanoseconds())/float64(b.N), "mount-ns/op")
}
