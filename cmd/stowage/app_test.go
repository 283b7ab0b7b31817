package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stowage/stowage/config"
)

// runTest runs the CLI in-process with a store configuration that does
// not depend on the host's storage.conf.
func runTest(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "storage.conf")
	if err := os.WriteFile(conf, []byte("[storage]\ndriver = \"vfs\"\ngraphroot = \"/tmp/cfg-g\"\nrunroot = \"/tmp/cfg-r\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONTAINERS_STORAGE_CONF", conf)
	t.Setenv("STORAGE_DRIVER", "")
	t.Setenv("STORAGE_OPTS", "")
	var out, errOut bytes.Buffer
	code = runCLI(context.Background(), append([]string{"containers-storage"}, args...),
		&cliIO{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

func TestHelpAndParseErrors(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdoutHas  []string
		stderrHas  []string
		stdoutNot  []string
		stderrNone bool
	}{
		{name: "no arguments", args: nil, code: 1,
			stdoutHas: []string{"Usage: containers-storage command [options [...]]", "\n  layers                        List layers\n"},
			stderrHas: []string{"--graph, -g", "--storage-opt=[]"}},
		{name: "--help", args: []string{"--help"}, code: 0,
			stdoutHas: []string{"Commands:", "--debug, -D"}, stderrNone: true},
		{name: "-h", args: []string{"-h"}, code: 1,
			stdoutHas: []string{"flag: help requested while parsing arguments (1)"}},
		{name: "unknown global flag", args: []string{"--x"}, code: 1,
			stdoutHas: []string{"flag provided but not defined: --x while parsing arguments (1)"},
			stderrHas: []string{"flag provided but not defined: --x\nSee 'containers-storage --help'.\n"}},
		{name: "unknown command", args: []string{"foo"}, code: 1,
			stdoutHas: []string{"foo: unrecognized command.\n"}, stderrNone: true},
		{name: "command help", args: []string{"create-layer", "--help"}, code: 125,
			stdoutHas: []string{"Usage: containers-storage create-layer [options [...]] [parentLayerNameOrID]\n\nCreate a new layer\n\nOptions:\n"},
			stderrHas: []string{"--readonly, -r", "--graph, -g=/tmp/cfg-g", "--storage-driver, -s=vfs", "--uidmap"}},
		{name: "command -h", args: []string{"layers", "-h"}, code: 125,
			stdoutHas: []string{"Usage: containers-storage layers [options [...]]"}},
		{name: "unknown command flag", args: []string{"layers", "--x"}, code: 125,
			stderrHas: []string{"flag provided but not defined: --x\nSee 'containers-storage layers --help'.\n"}},
		{name: "missing flag value", args: []string{"create-layer", "-i"}, code: 125,
			stderrHas: []string{"flag needs an argument: -i\n"}},
		{name: "unknown --option on mount", args: []string{"mount", "--option", "nosuid", "x"}, code: 125,
			stderrHas: []string{"flag provided but not defined: --option"}},
		{name: "too few arguments", args: []string{"diff"}, code: 1,
			stdoutHas: []string{"diff: more arguments required.\nUsage: containers-storage diff"}},
		{name: "too many arguments", args: []string{"diff", "a", "b", "c"}, code: 1,
			stdoutHas: []string{"diff: too many arguments ([a b c]).\n"}},
		{name: "max 0 means none", args: []string{"layers", "extra"}, code: 1,
			stdoutHas: []string{"layers: too many arguments ([extra]).\n"}},
		{name: "flags after a positional are positional", args: []string{"create-image", "x", "-n", "y"}, code: 1,
			stdoutHas: []string{"create-image: too many arguments ([x -n y]).\n"}},
		{name: "alias accepted", args: []string{"apply-diff"}, code: 1,
			stdoutHas: []string{"apply-diff: more arguments required.\n"}},
		{name: "usage table lists main commands", args: nil, code: 1,
			stdoutHas: []string{"  remove-names  ", "  storage-layers  ", "  check  ", "  unshare  "},
			stdoutNot: []string{"  umount  ", "  apply-diff  "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runTest(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, s := range tc.stdoutHas {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.stdoutNot {
				if strings.Contains(out, s) {
					t.Errorf("stdout has %q:\n%s", s, out)
				}
			}
			for _, s := range tc.stderrHas {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if tc.stderrNone && errOut != "" {
				t.Errorf("stderr not empty: %q", errOut)
			}
		})
	}
}

func TestVersionNeedsNoStore(t *testing.T) {
	code, out, errOut := runTest(t, "version")
	if code != 0 || out != "" || errOut != "Version: "+version+"\n" {
		t.Fatalf("version: exit %d stdout %q stderr %q", code, out, errOut)
	}
	code, out, _ = runTest(t, "version", "--json")
	if code != 0 || out != `[["Version","`+version+`"]]`+"\n" {
		t.Fatalf("version --json: exit %d stdout %q", code, out)
	}
}

func TestConfigCommand(t *testing.T) {
	code, out, errOut := runTest(t, "config")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, s := range []string{`"runroot":"/tmp/cfg-r"`, `"root":"/tmp/cfg-g"`, `"driver":"vfs"`} {
		if !strings.Contains(out, s) {
			t.Errorf("config output lacks %s: %s", s, out)
		}
	}
}

func TestCommandTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range commands {
		if c.usage == "" {
			t.Errorf("%s: no description", c.names[0])
		}
		if c.maxArgs >= 0 && c.maxArgs < c.minArgs {
			t.Errorf("%s: max %d < min %d", c.names[0], c.maxArgs, c.minArgs)
		}
		for _, n := range c.names {
			if seen[n] {
				t.Errorf("command name %q registered twice", n)
			}
			seen[n] = true
		}
		// Every command's flag set must build without redefinition panics.
		fs := newFlagSet(c.names[0], "x", &bytes.Buffer{})
		(&globalOptions{}).addFlags(fs)
		c.newRun().addFlags(fs)
	}
	for _, n := range []string{"umount", "diff-size", "apply-diff", "createlayer", "listimagedata", "getcontainerrundir", "removenames"} {
		if !seen[n] {
			t.Errorf("alias %q missing", n)
		}
	}
}

func TestStoreOptionResolution(t *testing.T) {
	t.Setenv("CONTAINERS_STORAGE_CONF", "/nonexistent/storage.conf")
	g := &globalOptions{graph: "rel/root"}
	opts, err := g.storeOptions()
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if opts.GraphRoot != filepath.Join(wd, "rel/root") {
		t.Errorf("graph root %q not made absolute", opts.GraphRoot)
	}
	if opts.RunRoot != "/run/containers/storage" {
		t.Errorf("missing run root not taken from defaults: %q", opts.RunRoot)
	}
	if _, err := (&globalOptions{driver: "vfs"}).storeOptions(); err == nil {
		t.Error("no roots: want an error")
	}
}

// Mode flags given before the command name survive the configured
// defaults that fill the roots (no root, driver or option flag given).
func TestModeFlagsKeptOverConfig(t *testing.T) {
	for _, tc := range []struct {
		conf  string
		flags globalOptions
		want  func(g *globalOptions) bool
	}{
		{"transient_store = false\n", globalOptions{transient: true}, func(g *globalOptions) bool { return g.transient }},
		{"transient_store = true\n", globalOptions{}, func(g *globalOptions) bool { return g.transient }},
		{"imagestore = \"/cfg-is\"\n", globalOptions{imageStore: "/flag-is"}, func(g *globalOptions) bool { return g.imageStore == "/flag-is" }},
		{"imagestore = \"/cfg-is\"\n", globalOptions{}, func(g *globalOptions) bool { return g.imageStore == "/cfg-is" }},
	} {
		conf := filepath.Join(t.TempDir(), "storage.conf")
		body := "[storage]\ndriver = \"vfs\"\ngraphroot = \"/cfg-g\"\nrunroot = \"/cfg-r\"\n" + tc.conf
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Setenv("CONTAINERS_STORAGE_CONF", conf)
		c, err := config.Default()
		if err != nil {
			t.Fatal(err)
		}
		g := tc.flags
		g.fromConfig(c)
		if !tc.want(&g) || g.graph != "/cfg-g" {
			t.Errorf("config %q, flags %+v: got %+v", tc.conf, tc.flags, g)
		}
	}
}

func TestExitCode(t *testing.T) {
	var b bytes.Buffer
	if c := exitCode(exitStatus(3), &b); c != 3 || b.Len() != 0 {
		t.Errorf("exitStatus: %d %q", c, b.String())
	}
	if c := exitCode(errNotImplemented("gc"), &b); c != 1 || b.String() != "stowage: gc is not implemented yet (issue #4)\n" {
		t.Errorf("error: %d %q", c, b.String())
	}
}
