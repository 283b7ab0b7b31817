package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/stowage/stowage/config"
	"github.com/stowage/stowage/store"
)

// cliIO holds the process streams, so that tests can run the CLI in-process.
type cliIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command describes one CLI command; newRunner makes a fresh value holding
// its flags for each invocation.
type command struct {
	names    []string
	synopsis string // shown after the command name in "Usage:"
	usage    string // one-line description
	minArgs  int
	maxArgs  int  // -1: unlimited, 0: none allowed
	noStore  bool // runs without opening the store
	newRun   func() runner
}

// runner is one invocation of a command.
type runner interface {
	addFlags(fs *flagSet)
	base() *cmdBase
	run(ctx context.Context, st *store.Store, args []string) error
}

// cmdBase is embedded by every command: its printer and the global options.
type cmdBase struct {
	p    *printer
	g    *globalOptions
	json bool
}

func (b *cmdBase) base() *cmdBase { return b }

// jsonFlag registers -j/--json.
func (b *cmdBase) jsonFlag(fs *flagSet) {
	fs.boolVar(&b.json, []string{"-json", "j"}, "Prefer JSON output")
}

// exitStatus is an error that only carries an exit status (its message, if
// any, was already printed).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// failedStatus is exit status 1 when some argument failed (its message was
// printed with the results), else nil.
func failedStatus(failed bool) error {
	if failed {
		return exitStatus(1)
	}
	return nil
}

// globalOptions are the flags accepted before and after the command name.
type globalOptions struct {
	graph, run, driver string
	storageOpts        []string
	imageStore         string
	transient          bool
	disableVolatile    bool
	debug              bool
	unshare            bool
	help               bool
}

func (g *globalOptions) addFlags(fs *flagSet) {
	fs.stringVar(&g.run, []string{"-run", "R"}, "Root of the runtime state tree")
	fs.stringVar(&g.graph, []string{"-graph", "g"}, "Root of the storage tree")
	fs.stringVar(&g.imageStore, []string{"-image-store"}, "Root of the separate image store")
	fs.boolVar(&g.transient, []string{"-transient-store"}, "Transient store mode")
	fs.boolVar(&g.disableVolatile, []string{"-disable-volatile"}, "Never mount volatile, store volatile containers durably (storage.conf disable-volatile)")
	fs.stringVar(&g.driver, []string{"-storage-driver", "s"}, "Storage driver to use ($STORAGE_DRIVER)")
	fs.listVar(&g.storageOpts, []string{"-storage-opt"}, "Set storage driver options ($STORAGE_OPTS)")
	fs.boolVar(&g.debug, []string{"-debug", "D"}, "Print debugging information")
	fs.boolVar(&g.unshare, []string{"-unshare", "U"}, "Run in a user namespace")
}

// anyStoreFlag reports whether a root, driver or driver option was given.
func (g *globalOptions) anyStoreFlag() bool {
	return g.graph != "" || g.run != "" || g.driver != "" || len(g.storageOpts) > 0
}

// fromConfig fills the store options no root, driver or driver option
// flag gave with the configured defaults; an --image-store,
// --transient-store or --disable-volatile given before the command name
// still counts (a flag turns a mode on whatever the file says).
func (g *globalOptions) fromConfig(c *config.Config) {
	g.graph, g.run, g.driver = c.GraphRoot, c.RunRoot, c.Driver
	g.storageOpts = append([]string(nil), c.DriverOptions...)
	if g.imageStore == "" {
		g.imageStore = c.ImageStore
	}
	g.transient = g.transient || c.TransientStore
	g.disableVolatile = g.disableVolatile || c.DisableVolatile
}

// storeOptions resolves the final store.Options (after both parse phases).
func (g *globalOptions) storeOptions() (store.Options, error) {
	if g.graph == "" || g.run == "" {
		if g.graph == "" && g.run == "" {
			return store.Options{}, store.ErrIncompleteOptions
		}
		c, err := config.Default()
		if err != nil {
			return store.Options{}, err
		}
		if g.graph == "" {
			g.graph = c.GraphRoot
		}
		if g.run == "" {
			g.run = c.RunRoot
		}
	}
	graph, err := filepath.Abs(g.graph)
	if err != nil {
		return store.Options{}, err
	}
	run, err := filepath.Abs(g.run)
	if err != nil {
		return store.Options{}, err
	}
	opts := store.Options{
		GraphRoot:          graph,
		RunRoot:            run,
		ImageStore:         g.imageStore,
		GraphDriverName:    g.driver,
		GraphDriverOptions: g.storageOpts,
		TransientStore:     g.transient,
		DisableVolatile:    g.disableVolatile,
	}
	if opts.ImageStore != "" {
		if opts.ImageStore, err = filepath.Abs(opts.ImageStore); err != nil {
			return store.Options{}, err
		}
	}
	return opts, nil
}

// findCommand returns the command one of whose names is name.
func findCommand(name string) *command {
	for _, c := range commands {
		for _, n := range c.names {
			if n == name {
				return c
			}
		}
	}
	return nil
}

// mainUsage prints the command table to out and the flag defaults to defOut.
func mainUsage(prog string, fs *flagSet, out, defOut io.Writer) {
	fmt.Fprintf(out, "Usage: %s command [options [...]]\n\n", prog)
	fmt.Fprintf(out, "Commands:\n\n")
	for _, c := range commands {
		fmt.Fprintf(out, "  %-30s%s\n", c.names[0], c.usage)
	}
	fmt.Fprintf(out, "\nOptions:\n")
	fs.printDefaults(defOut)
}

// runCLI runs one command line and returns the exit status.
func runCLI(ctx context.Context, argv []string, cio *cliIO) int {
	argv0 := "stowage"
	if len(argv) > 0 {
		argv0 = argv[0]
	}
	prog := filepath.Base(argv0)
	g := &globalOptions{}
	gfs := newFlagSet("", argv0, cio.stderr)
	g.addFlags(gfs)
	if len(argv) < 2 {
		mainUsage(prog, gfs, cio.stdout, cio.stderr)
		return 1
	}
	gfs.boolVar(&g.help, []string{"#help", "-help"}, "Print usage")
	gfs.usage = func() { mainUsage(prog, gfs, cio.stdout, cio.stderr) }
	if err := gfs.parse(argv[1:]); err != nil {
		fmt.Fprintf(cio.stdout, "%v while parsing arguments (1)\n", err)
		mainUsage(prog, gfs, cio.stdout, cio.stderr)
		return 1
	}
	if g.help {
		mainUsage(prog, gfs, cio.stdout, cio.stdout)
		return 0
	}
	if !g.anyStoreFlag() {
		c, err := config.Default()
		if err != nil {
			fmt.Fprintln(cio.stderr, err)
			return 1
		}
		g.fromConfig(c)
	}
	args := gfs.args
	if len(args) < 1 {
		mainUsage(prog, gfs, cio.stdout, cio.stderr)
		return 1
	}
	name := args[0]
	cmd := findCommand(name)
	if cmd == nil {
		fmt.Fprintf(cio.stdout, "%s: unrecognized command.\n", name)
		return 1
	}
	return cmd.invoke(ctx, prog, argv0, name, args[1:], g, cio)
}

// invoke runs phase two (command flags), the arity checks and the command.
func (c *command) invoke(ctx context.Context, prog, argv0, name string, args []string, g *globalOptions, cio *cliIO) int {
	r := c.newRun()
	fs := newFlagSet(name, argv0, cio.stderr)
	g.addFlags(fs)
	r.addFlags(fs)
	usage := func() {
		fmt.Fprintf(cio.stdout, "Usage: %s %s %s\n\n", prog, name, c.synopsis)
		fmt.Fprintf(cio.stdout, "%s\n", c.usage)
		fmt.Fprintf(cio.stdout, "\nOptions:\n")
		fs.printDefaults(cio.stderr)
	}
	fs.usage = usage
	if err := fs.parse(args); err != nil {
		return 125
	}
	args = fs.args
	if len(args) < c.minArgs {
		fmt.Fprintf(cio.stdout, "%s: more arguments required.\n", name)
		usage()
		return 1
	}
	if c.maxArgs >= 0 && len(args) > c.maxArgs {
		fmt.Fprintf(cio.stdout, "%s: too many arguments (%s).\n", name, args)
		usage()
		return 1
	}
	setupLogging(cio.stderr, g.debug)
	defer startLockStats(name, cio.stderr)()
	b := r.base()
	b.p = &printer{in: cio.stdin, out: cio.stdout, errOut: cio.stderr}
	b.g = g
	var st *store.Store
	if !c.noStore {
		opts, err := g.storeOptions()
		if err == nil {
			slog.Debug(fmt.Sprintf("Root: %s", opts.GraphRoot))
			slog.Debug(fmt.Sprintf("Run Root: %s", opts.RunRoot))
			slog.Debug(fmt.Sprintf("Driver Name: %s", opts.GraphDriverName))
			slog.Debug(fmt.Sprintf("Driver Options: %s", opts.GraphDriverOptions))
			st, err = store.Open(ctx, opts)
		}
		if err != nil {
			fmt.Fprintf(cio.stderr, "error initializing: %v\n", err)
			return 1
		}
		defer st.Close()
	}
	return exitCode(r.run(ctx, st, args), cio.stderr)
}

// exitCode prints err (if it has something to say) and maps it to a status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var es exitStatus
	if errors.As(err, &es) {
		return int(es)
	}
	msg := err.Error()
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	io.WriteString(stderr, msg)
	return 1
}

// errNotImplemented is returned by commands whose store support is still to come.
func errNotImplemented(cmd string) error {
	return fmt.Errorf("stowage: %s is not implemented yet (issue #4)", cmd)
}
