package register

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stowage/stowage/driver"
)

func TestNew(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		wantErr error
	}{
		{"vfs", nil},
		{"overlay", driver.ErrDriverUnknown},
		{"overlay2", driver.ErrDriverUnknown},
		{"btrfs", driver.ErrDriverUnknown},
		{"", driver.ErrDriverUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(ctx, tc.name, driver.Options{Root: filepath.Join(t.TempDir(), tc.name)})
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("New(%q): err %v, want %v", tc.name, err, tc.wantErr)
			}
			if err == nil && d.Name() != tc.name {
				t.Errorf("New(%q).Name() = %q", tc.name, d.Name())
			}
		})
	}
}

func TestNamesConstruct(t *testing.T) {
	for _, n := range Names() {
		if _, err := New(context.Background(), n, driver.Options{Root: filepath.Join(t.TempDir(), n)}); err != nil {
			t.Errorf("listed driver %q does not construct: %v", n, err)
		}
	}
}
