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
		{"overlay", nil},
		{"overlay2", nil},
		{"btrfs", driver.ErrDriverUnknown},
		{"", driver.ErrDriverUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(ctx, tc.name, driver.Options{Root: filepath.Join(t.TempDir(), tc.name)})
			if err == nil {
				t.Cleanup(func() { _ = d.Cleanup(ctx) })
			}
			if errors.Is(err, driver.ErrNotSupported) {
				t.Skipf("%s: not supported here: %v", tc.name, err)
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("New(%q): err %v, want %v", tc.name, err, tc.wantErr)
			}
			want := tc.name
			if want == "overlay2" {
				want = "overlay"
			}
			if err == nil && d.Name() != want {
				t.Errorf("New(%q).Name() = %q", tc.name, d.Name())
			}
		})
	}
}

func TestNamesConstruct(t *testing.T) {
	for _, n := range Names() {
		d, err := New(context.Background(), n, driver.Options{Root: filepath.Join(t.TempDir(), n)})
		if errors.Is(err, driver.ErrNotSupported) {
			t.Logf("listed driver %q not supported here: %v", n, err)
			continue
		}
		if err != nil {
			t.Errorf("listed driver %q does not construct: %v", n, err)
			continue
		}
		if err := d.Cleanup(context.Background()); err != nil {
			t.Errorf("%s Cleanup: %v", n, err)
		}
	}
}
