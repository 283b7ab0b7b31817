package driver

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestSplitOption(t *testing.T) {
	k, v, err := SplitOption(" Ignore_Chown_Errors = true ")
	if err != nil || k != "ignore_chown_errors" || v != "true" {
		t.Errorf("SplitOption = %q %q %v", k, v, err)
	}
	if _, _, err := SplitOption("novalue"); err == nil || err.Error() != "unable to parse key/value option: novalue" {
		t.Errorf("option without '=': %v", err)
	}
}

func TestListSubdirs(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{filepath.Join(a, "x"), filepath.Join(a, "l"), filepath.Join(b, "y")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(a, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ListSubdirs([]string{a, filepath.Join(a, "missing"), b}, func(n string) bool { return n == "l" })
	if err != nil || !reflect.DeepEqual(got, []string{"x", "y"}) {
		t.Errorf("ListSubdirs = %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(b, "notdir"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListSubdirs([]string{filepath.Join(b, "notdir")}, nil); err == nil {
		t.Error("a file as a directory to list is not an error")
	}
}
