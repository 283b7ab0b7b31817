package drivertest

import (
	"os"
	"strings"
	"testing"
)

// RequireOverlay skips t unless the process is root and the kernel lists
// the overlay file system in /proc/filesystems (what the overlay driver's
// mounts need).
func RequireOverlay(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("overlay mounts need root")
	}
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil || !strings.Contains(string(b), "\toverlay\n") {
		t.Skip("the kernel has no overlay file system")
	}
}
