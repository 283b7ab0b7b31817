//go:build linux

package overlay

import (
	"context"
	"testing"

	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/drivertest"
)

// newTestDriver makes a driver on a fresh home with extra options.
func newTestDriver(t testing.TB, opts ...string) *Driver {
	t.Helper()
	drivertest.RequireOverlay(t)
	dir := t.TempDir()
	d, err := New(context.Background(), driver.Options{Root: dir + "/overlay", RunRoot: dir + "/run/overlay", DriverOptions: opts})
	if err != nil {
		t.Fatal(err)
	}
	return d.(*Driver)
}

func TestConformance(t *testing.T) {
	drivertest.RequireOverlay(t)
	drivertest.Run(t, func(t *testing.T) driver.Driver { return newTestDriver(t) })
}
