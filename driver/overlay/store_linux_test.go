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
	"syscall"
	"testing"
	"time"

	"github.com/stowage/stowage/driver/drivertest"
	"github.com/stowage/stowage/internal/idmap"
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

// The store's two ID-mapping modes on overlay: with idmapped lowers a
// container's layer stays unmapped and Mount shows the image through the
// container's maps; with _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes the
// container sits on a chowned mapped copy of the image's top layer.
func TestStoreContainerMaps(t *testing.T) {
	maps := []idmap.IDMap{{ContainerID: 0, HostID: 3000, Size: 100}}
	for _, mode := range []string{"idmapped lowers", "mapped copies"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "mapped copies" {
				t.Setenv("_CONTAINERS_OVERLAY_DISABLE_IDMAP", "yes")
			} else {
				t.Setenv("_CONTAINERS_OVERLAY_DISABLE_IDMAP", "")
			}
			s := openStore(t)
			ctx := context.Background()
			blob := drivertest.Tar(t, drivertest.Entry{Name: "f", Body: "x", UID: 7, GID: 8})
			l, err := s.PutLayer(ctx, bytes.NewReader(blob), store.LayerOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			img, err := s.CreateImage(ctx, store.ImageOptions{TopLayer: l.ID})
			if err != nil {
				t.Fatal(err)
			}
			c, err := s.CreateContainer(ctx, store.ContainerOptions{Image: img.ID, IDMapping: store.IDMappingOptions{UIDMap: maps, GIDMap: maps}})
			if err != nil {
				t.Fatal(err)
			}
			cl, err := s.Layer(ctx, c.LayerID)
			if err != nil {
				t.Fatal(err)
			}
			img, err = s.Image(ctx, img.ID)
			if err != nil {
				t.Fatal(err)
			}
			shifted := len(cl.UIDMap) == 0
			if mode == "mapped copies" && (shifted || len(img.MappedTopLayers) != 1) {
				t.Fatalf("container layer maps %v, mapped-layers %v: want a mapped copy", cl.UIDMap, img.MappedTopLayers)
			}
			if mode == "idmapped lowers" {
				if !shifted {
					t.Skip("no idmapped lowers here: the container layer was chowned")
				}
				if cl.Parent != l.ID || len(img.MappedTopLayers) != 0 {
					t.Fatalf("container layer on %s, mapped-layers %v: want the top layer itself", cl.Parent, img.MappedTopLayers)
				}
			}
			mnt, err := s.Mount(ctx, c.ID, store.MountOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(mnt, "f"))
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != 3007 || st.Gid != 3008 {
				t.Errorf("f owned by %d:%d in the container, want 3007:3008", st.Uid, st.Gid)
			}
			if _, err := s.Unmount(ctx, c.ID, false); err != nil {
				t.Fatal(err)
			}
		})
	}
}
