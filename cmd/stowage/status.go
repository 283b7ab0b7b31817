package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/stowage/stowage/config"
	"github.com/stowage/stowage/store"
)

var statusCmd = &command{
	names: []string{"status"}, usage: "Check on graph driver status",
	maxArgs: 0, newRun: func() runner { return &statusRun{} },
}

type statusRun struct{ cmdBase }

func (c *statusRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *statusRun) run(ctx context.Context, st *store.Store, _ []string) error {
	pairs, err := st.Status(ctx)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if pairs == nil {
		pairs = [][2]string{}
	}
	return c.printPairs(pairs)
}

// printPairs prints key/value pairs as JSON, or as "KEY: VALUE" lines on
// stderr (upstream's quirk, which scripts read with 2>&1).
func (b *cmdBase) printPairs(pairs [][2]string) error {
	return b.p.Output(b.json, pairs, func() {
		for _, p := range pairs {
			b.p.Errorf("%s: %s\n", p[0], p[1])
		}
	})
}

var versionCmd = &command{
	names: []string{"version"}, usage: "Return containers-storage version information",
	maxArgs: 0, noStore: true, newRun: func() runner { return &versionRun{} },
}

type versionRun struct{ cmdBase }

func (c *versionRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *versionRun) run(context.Context, *store.Store, []string) error {
	return c.printPairs([][2]string{{"Version", version}})
}

var shutdownCmd = &command{
	names: []string{"shutdown"}, usage: "Shut down layer storage",
	maxArgs: 0, newRun: func() runner { return &shutdownRun{} },
}

type shutdownRun struct {
	cmdBase
	force bool
}

func (c *shutdownRun) addFlags(fs *flagSet) {
	fs.boolVar(&c.force, []string{"-force", "f"}, "Unmount mounted layers first")
	c.jsonFlag(fs)
}

func (c *shutdownRun) run(ctx context.Context, st *store.Store, _ []string) error {
	_, err := st.Shutdown(ctx, c.force)
	if c.json {
		return c.p.ErrorJSON(err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

var dedupCmd = &command{
	names: []string{"dedup"}, usage: "Dedup all images",
	maxArgs: 0, newRun: func() runner { return &dedupRun{hash: "crc"} },
}

type dedupRun struct {
	cmdBase
	hash string
}

func (c *dedupRun) addFlags(fs *flagSet) {
	fs.stringVar(&c.hash, []string{"-hash-method"}, "Specify the hash function to use to detect identical files")
	c.jsonFlag(fs)
}

func (c *dedupRun) run(context.Context, *store.Store, []string) error {
	switch c.hash {
	case "crc", "size", "sha256":
	default:
		return fmt.Errorf("unknown hash function %q", c.hash)
	}
	return errNotImplemented("dedup")
}

var configCmd = &command{
	names: []string{"config"}, synopsis: "[options [...]] [configurationFile]",
	usage:   "Print storage library configuration as JSON",
	maxArgs: 1, noStore: true, newRun: func() runner { return &configRun{} },
}

type configRun struct{ cmdBase }

func (c *configRun) addFlags(*flagSet) {}

// run prints the configured defaults, read from FILE when one is given
// (upstream caches the defaults and ignores FILE; reading it is what it meant).
func (c *configRun) run(_ context.Context, _ *store.Store, args []string) error {
	var (
		cfg *config.Config
		err error
	)
	if len(args) > 0 {
		if cfg, err = config.Load(args[0]); err == nil {
			cfg.ApplyEnv()
		}
	} else {
		cfg, err = config.Default()
	}
	if err != nil {
		return err
	}
	return c.p.JSON(cfg)
}

var unshareCmd = &command{
	names: []string{"unshare"}, synopsis: "[options [...]] [command [...]]",
	usage:   "Run a command in a user namespace",
	maxArgs: -1, noStore: true, newRun: func() runner { return &unshareRun{} },
}

type unshareRun struct{ cmdBase }

func (c *unshareRun) addFlags(*flagSet) {}

// run executes the command directly: stowage runs as root, where the user
// namespace upstream would enter is the host's own.
func (c *unshareRun) run(ctx context.Context, _ *store.Store, args []string) error {
	if os.Geteuid() != 0 {
		return errors.New("unshare: running as non-root is not supported yet")
	}
	if len(args) == 0 {
		sh := os.Getenv("SHELL")
		if sh == "" {
			sh = "/bin/sh"
		}
		args = []string{sh}
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.p.in, c.p.out, c.p.errOut
	cmd.Env = append(os.Environ(),
		"CONTAINERS_GRAPHROOT="+c.g.graph, "CONTAINERS_RUNROOT="+c.g.run)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return exitStatus(ee.ExitCode())
		}
		return err
	}
	return nil
}
