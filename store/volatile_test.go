package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver/drivertest"
)

// openVolatileTest opens a store on drv with disable-volatile set or not
// and returns it with an image to create containers from.
func openVolatileTest(t *testing.T, drv string, disable bool) (*Store, string) {
	t.Helper()
	if drv == "overlay" {
		drivertest.RequireOverlay(t)
	}
	dir := t.TempDir()
	s, err := Open(testCtx(t), Options{GraphRoot: filepath.Join(dir, "root"), RunRoot: filepath.Join(dir, "run"), GraphDriverName: drv, DisableVolatile: disable})
	if err != nil {
		t.Fatalf("Open %s: %v", drv, err)
	}
	t.Cleanup(func() {
		_, _ = s.Shutdown(testCtx(t), true)
		s.Close()
	})
	l, err := s.CreateLayer(testCtx(t), LayerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.CreateImage(testCtx(t), ImageOptions{TopLayer: l.ID})
	if err != nil {
		t.Fatal(err)
	}
	return s, img.ID
}

// TestDisableVolatileStoresDurably: with disable-volatile a volatile
// container and its layer are recorded in containers.json / layers.json,
// flushed, and still carry the Volatile flag; without it they go to the
// volatile files.
func TestDisableVolatileStoresDurably(t *testing.T) {
	for _, disable := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "disable-volatile"}[disable]
		t.Run(name, func(t *testing.T) {
			s, img := openVolatileTest(t, "vfs", disable)
			ctx := testCtx(t)
			g := s.GraphRoot()
			get := recordSyncs(t)
			c, err := s.CreateContainer(ctx, ContainerOptions{Image: img, Volatile: true})
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := c.Flags[volatileFlag].(bool); !v {
				t.Errorf("container lost its Volatile flag: %+v", c.Flags)
			}
			read := func(p string) string {
				b, err := os.ReadFile(filepath.Join(g, p))
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				return string(b)
			}
			stableC, volC := read("vfs-containers/containers.json"), read("vfs-containers/volatile-containers.json")
			stableL, volL := read("vfs-layers/layers.json"), read("vfs-layers/volatile-layers.json")
			if disable {
				if !strings.Contains(stableC, c.ID) || strings.Contains(volC, c.ID) {
					t.Errorf("container not in containers.json only:\nstable %s\nvolatile %s", stableC, volC)
				}
				if !strings.Contains(stableL, c.LayerID) || strings.Contains(volL, c.LayerID) {
					t.Errorf("container layer not in layers.json only:\nstable %s\nvolatile %s", stableL, volL)
				}
				if !strings.Contains(stableC, `"Volatile":true`) {
					t.Errorf("containers.json lacks the Volatile flag: %s", stableC)
				}
				evs := get()
				if indexOf(evs, false, func(e syncEvent) bool { return isTemp(e, "containers.json") }) < 0 ||
					indexOf(evs, false, func(e syncEvent) bool { return isTemp(e, "layers.json") }) < 0 {
					t.Errorf("records not flushed: %v", evs)
				}
			} else if strings.Contains(stableC, c.ID) || !strings.Contains(volC, c.ID) || !strings.Contains(volL, c.LayerID) {
				t.Errorf("volatile container not in the volatile files:\ncontainers %s\nvolatile %s\nvolatile layers %s", stableC, volC, volL)
			}
			// Reopening finds it either way, still flagged.
			s.Close()
			s2, err := Open(ctx, s.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			c2, err := s2.Container(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := c2.Flags[volatileFlag].(bool); !v {
				t.Errorf("reopened container lost its Volatile flag: %+v", c2.Flags)
			}
		})
	}
}

// TestDisableVolatileMount: on overlay a volatile container is mounted with
// the volatile option unless disable-volatile is set (as containers-storage
// 1.43 does).
func TestDisableVolatileMount(t *testing.T) {
	for _, disable := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "disable-volatile"}[disable]
		t.Run(name, func(t *testing.T) {
			s, img := openVolatileTest(t, "overlay", disable)
			ctx := testCtx(t)
			c, err := s.CreateContainer(ctx, ContainerOptions{Image: img, Volatile: true})
			if err != nil {
				t.Fatal(err)
			}
			mnt, err := s.Mount(ctx, c.ID, MountOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _, _ = s.Unmount(ctx, c.ID, true) }()
			opts := superOptions(t, mnt)
			vol := false
			for _, o := range strings.Split(opts, ",") {
				vol = vol || o == "volatile" || o == "fsync=volatile"
			}
			switch {
			case disable && vol:
				t.Errorf("disable-volatile, but mounted with %s", opts)
			case !disable && !vol:
				// The kernel or the probe may not offer it; then this
				// run says nothing about disable-volatile.
				t.Skipf("overlay did not mount volatile here (%s); cannot compare", opts)
			}
		})
	}
}

// superOptions returns the super options of the mount at p.
func superOptions(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == p {
			if _, after, ok := strings.Cut(line, " - "); ok {
				if g := strings.Fields(after); len(g) >= 3 {
					return g[2]
				}
			}
		}
	}
	t.Fatalf("%s is not mounted", p)
	return ""
}
