//go:build linux

package overlay

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/drivertest"
)

// requireOverlay skips unless we are root and the kernel has overlay.
func requireOverlay(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("overlay mounts need root")
	}
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil || !strings.Contains(string(b), "\toverlay\n") {
		t.Skip("the kernel has no overlay file system")
	}
}

// newTestDriver makes a driver on a fresh home with extra options.
func newTestDriver(t testing.TB, opts ...string) *Driver {
	t.Helper()
	requireOverlay(t)
	dir := t.TempDir()
	d, err := New(context.Background(), driver.Options{Root: dir + "/overlay", RunRoot: dir + "/run/overlay", DriverOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Driver)
}

func TestConformance(t *testing.T) {
	requireOverlay(t)
	drivertest.Run(t, func(t *testing.T) driver.Driver { return newTestDriver(t) })
}
