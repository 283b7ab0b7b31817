package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/stowage/stowage/store"
)

// Built-in defaults, used when no file names the roots.
const (
	DefaultGraphRoot = "/var/lib/containers/storage"
	DefaultRunRoot   = "/run/containers/storage"
)

// Lookup locations after $CONTAINERS_STORAGE_CONF, in order.
var systemFiles = []string{"/etc/containers/storage.conf", "/usr/share/containers/storage.conf"}

// Config is what storage.conf (plus the environment) says about a store.
// The JSON names follow what `containers-storage config` prints.
type Config struct {
	RunRoot        string   `json:"runroot"`
	GraphRoot      string   `json:"root"`
	ImageStore     string   `json:"imagestore,omitempty"`
	Driver         string   `json:"driver"`
	DriverPriority []string `json:"driver-priority,omitempty"`
	// DriverOptions are "driver.key=value" strings (additional image
	// stores, mountopt and the per-driver table of the selected driver).
	DriverOptions  []string          `json:"driver-options,omitempty"`
	PullOptions    map[string]string `json:"PullOptions,omitempty"`
	TransientStore bool              `json:"transient_store,omitempty"`
	// DisableVolatile is [storage.options] disable-volatile.
	DisableVolatile bool `json:"disable-volatile,omitempty"`

	// File is the configuration file that was read; empty when none existed.
	File string `json:"-"`
}

// tomlFile mirrors the parts of storage.conf we understand; unknown keys
// are ignored.
type tomlFile struct {
	Storage struct {
		Driver         string   `toml:"driver"`
		DriverPriority []string `toml:"driver_priority"`
		GraphRoot      string   `toml:"graphroot"`
		RunRoot        string   `toml:"runroot"`
		ImageStore     string   `toml:"imagestore"`
		TransientStore bool     `toml:"transient_store"`
		Options        struct {
			AdditionalImageStores []string          `toml:"additionalimagestores"`
			MountOpt              string            `toml:"mountopt"`
			PullOptions           map[string]string `toml:"pull_options"`
			DisableVolatile       bool              `toml:"disable-volatile"`
			Overlay               map[string]any    `toml:"overlay"`
			VFS                   map[string]any    `toml:"vfs"`
			Btrfs                 map[string]any    `toml:"btrfs"`
			ZFS                   map[string]any    `toml:"zfs"`
		} `toml:"options"`
	} `toml:"storage"`
}

// Path returns the configuration file to read: $CONTAINERS_STORAGE_CONF if
// set, else the first existing system file, else "" (built-in defaults).
func Path() string {
	if p := os.Getenv("CONTAINERS_STORAGE_CONF"); p != "" {
		return p
	}
	for _, p := range systemFiles {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Default returns the configuration the store uses when no root, driver
// or driver option is given on the command line: the file from Path
// (a missing $CONTAINERS_STORAGE_CONF file counts as empty), then
// $STORAGE_DRIVER and $STORAGE_OPTS.
func Default() (*Config, error) {
	c, err := Load(Path())
	if err != nil {
		return nil, err
	}
	c.ApplyEnv()
	return c, nil
}

// Load reads one file; path "" or a missing file gives the built-in defaults.
// The environment is not consulted.
func Load(path string) (*Config, error) {
	c := &Config{GraphRoot: DefaultGraphRoot, RunRoot: DefaultRunRoot}
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading storage configuration: %w", err)
	}
	c.File = path
	var t tomlFile
	if _, err := toml.Decode(string(data), &t); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrMalformed, path, err)
	}
	s := t.Storage
	if s.GraphRoot != "" {
		c.GraphRoot = s.GraphRoot
	}
	if s.RunRoot != "" {
		c.RunRoot = s.RunRoot
	}
	c.Driver = canonicalDriver(s.Driver)
	c.DriverPriority = s.DriverPriority
	c.ImageStore = s.ImageStore
	c.TransientStore = s.TransientStore
	c.PullOptions = s.Options.PullOptions
	c.DisableVolatile = s.Options.DisableVolatile
	c.deriveDriverOptions(&t)
	return c, nil
}

// canonicalDriver maps the "overlay2" alias to "overlay".
func canonicalDriver(name string) string {
	if name == "overlay2" {
		return "overlay"
	}
	return name
}

// deriveDriverOptions derives DriverOptions from t for the selected driver.
func (c *Config) deriveDriverOptions(t *tomlFile) {
	o := t.Storage.Options
	drv := c.Driver
	for _, s := range o.AdditionalImageStores {
		c.DriverOptions = append(c.DriverOptions, fmt.Sprintf("%s.imagestore=%s", drv, s))
	}
	var table map[string]any
	switch drv {
	case "overlay":
		table = o.Overlay
	case "vfs":
		table = o.VFS
	case "btrfs":
		table = o.Btrfs
	case "zfs":
		table = o.ZFS
	}
	if _, ok := table["mountopt"]; !ok && o.MountOpt != "" {
		c.DriverOptions = append(c.DriverOptions, fmt.Sprintf("%s.mountopt=%s", drv, o.MountOpt))
	}
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch v := table[k].(type) {
		case string, bool, int64, float64:
			c.DriverOptions = append(c.DriverOptions, fmt.Sprintf("%s.%s=%v", drv, k, v))
		case []any:
			for _, e := range v {
				c.DriverOptions = append(c.DriverOptions, fmt.Sprintf("%s.%s=%v", drv, strings.TrimSuffix(k, "s"), e))
			}
		}
	}
}

// ApplyEnv applies $STORAGE_DRIVER and $STORAGE_OPTS (comma-separated;
// replaces the driver options).
func (c *Config) ApplyEnv() {
	if d := os.Getenv("STORAGE_DRIVER"); d != "" {
		c.Driver = canonicalDriver(d)
	}
	if o := os.Getenv("STORAGE_OPTS"); o != "" {
		c.DriverOptions = nil
		for _, s := range strings.Split(o, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.DriverOptions = append(c.DriverOptions, s)
			}
		}
	}
}

// StoreOptions converts c into the options store.Open takes.
func (c *Config) StoreOptions() store.Options {
	return store.Options{
		GraphRoot:          c.GraphRoot,
		RunRoot:            c.RunRoot,
		ImageStore:         c.ImageStore,
		GraphDriverName:    c.Driver,
		GraphDriverOptions: append([]string(nil), c.DriverOptions...),
		TransientStore:     c.TransientStore,
		DisableVolatile:    c.DisableVolatile,
	}
}
