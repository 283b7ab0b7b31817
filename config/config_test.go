package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "storage.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Config
	}{
		{
			name: "empty file gives built-in roots",
			text: "",
			want: Config{GraphRoot: DefaultGraphRoot, RunRoot: DefaultRunRoot},
		},
		{
			name: "roots, driver, overlay2 alias, unknown keys ignored",
			text: `[storage]
driver = "overlay2"
graphroot = "/g"
runroot = "/r"
imagestore = "/i"
transient_store = true
driver_priority = ["overlay", "vfs"]
unknown_key = 1
[storage.options]
mountopt = "nodev"
additionalimagestores = ["/ro1", "/ro2"]
disable-volatile = true
[storage.options.overlay]
mount_program = "/usr/bin/fuse-overlayfs"
[storage.options.vfs]
ignore_chown_errors = "true"
[storage.options.pull_options]
enable_partial_images = "true"
`,
			want: Config{
				GraphRoot: "/g", RunRoot: "/r", ImageStore: "/i", Driver: "overlay", TransientStore: true,
				DriverPriority: []string{"overlay", "vfs"},
				DriverOptions: []string{
					"overlay.imagestore=/ro1", "overlay.imagestore=/ro2",
					"overlay.mountopt=nodev", "overlay.mount_program=/usr/bin/fuse-overlayfs",
				},
				PullOptions:     map[string]string{"enable_partial_images": "true"},
				DisableVolatile: true,
			},
		},
		{
			name: "per-driver mountopt wins over the generic one; vfs table",
			text: `[storage]
driver = "vfs"
[storage.options]
mountopt = "nodev"
[storage.options.vfs]
ignore_chown_errors = "true"
mountopt = "ro"
[storage.options.overlay]
mountopt = "metacopy=on"
`,
			want: Config{
				GraphRoot: DefaultGraphRoot, RunRoot: DefaultRunRoot, Driver: "vfs",
				DriverOptions: []string{"vfs.ignore_chown_errors=true", "vfs.mountopt=ro"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConf(t, tc.text)
			c, err := Load(p)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.File = p
			if !reflect.DeepEqual(*c, tc.want) {
				t.Errorf("got  %+v\nwant %+v", *c, tc.want)
			}
		})
	}
}

// TestDisableVolatileReachesStore: disable-volatile is read from
// [storage.options] (where containers-storage reads it), printed under its
// upstream JSON name and handed to the store.
func TestDisableVolatileReachesStore(t *testing.T) {
	c, err := Load(writeConf(t, "[storage]\ndriver = \"vfs\"\n[storage.options]\ndisable-volatile = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.StoreOptions().DisableVolatile {
		t.Errorf("StoreOptions lost disable-volatile: %+v", c.StoreOptions())
	}
	b, err := json.Marshal(c)
	if err != nil || !strings.Contains(string(b), `"disable-volatile":true`) {
		t.Errorf("JSON %s, %v", b, err)
	}
	// Upstream reads it from [storage.options] only: a key under [storage]
	// is ignored.
	c, err = Load(writeConf(t, "[storage]\ndriver = \"vfs\"\ndisable-volatile = true\n"))
	if err != nil || c.DisableVolatile {
		t.Errorf("[storage] disable-volatile: %+v, %v", c, err)
	}
}

func TestLoadMalformed(t *testing.T) {
	p := writeConf(t, "[storage]\ndriver = \"vfs\"\ngraphroot = /unquoted\n")
	_, err := Load(p)
	if err == nil {
		t.Fatal("want an error")
	}
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %q should wrap ErrMalformed and name the file and line 3", err)
	}
}

func TestLoadMissing(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "nope.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if c.GraphRoot != DefaultGraphRoot || c.RunRoot != DefaultRunRoot || c.File != "" {
		t.Errorf("missing file: %+v", c)
	}
}

func TestDefaultEnv(t *testing.T) {
	p := writeConf(t, "[storage]\ndriver = \"overlay\"\ngraphroot = \"/g\"\nrunroot = \"/r\"\n[storage.options]\nmountopt = \"nodev\"\n")
	t.Setenv("CONTAINERS_STORAGE_CONF", p)
	t.Setenv("STORAGE_DRIVER", "")
	t.Setenv("STORAGE_OPTS", "")
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if c.Driver != "overlay" || !reflect.DeepEqual(c.DriverOptions, []string{"overlay.mountopt=nodev"}) {
		t.Errorf("from file: %+v", c)
	}
	t.Setenv("STORAGE_DRIVER", "vfs")
	t.Setenv("STORAGE_OPTS", "vfs.a=1, vfs.b=2")
	if c, err = Default(); err != nil {
		t.Fatal(err)
	}
	if c.Driver != "vfs" || !reflect.DeepEqual(c.DriverOptions, []string{"vfs.a=1", "vfs.b=2"}) {
		t.Errorf("env overrides: %+v", c)
	}
	o := c.StoreOptions()
	if o.GraphRoot != "/g" || o.RunRoot != "/r" || o.GraphDriverName != "vfs" || len(o.GraphDriverOptions) != 2 {
		t.Errorf("StoreOptions: %+v", o)
	}
}

func TestPath(t *testing.T) {
	t.Setenv("CONTAINERS_STORAGE_CONF", "/x/y.conf")
	if p := Path(); p != "/x/y.conf" {
		t.Errorf("Path = %q", p)
	}
}
