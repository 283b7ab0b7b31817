package main

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testFlags is a flag set with one flag of each kind.
type testFlags struct {
	graph, file string
	opts        []string
	debug, all  bool
	quiet       bool
	maxAge      time.Duration
}

func newTestSet(errOut *bytes.Buffer) (*flagSet, *testFlags) {
	v := &testFlags{}
	fs := newFlagSet("cmd", "prog", errOut)
	fs.stringVar(&v.graph, []string{"-graph", "g"}, "graph")
	fs.stringVar(&v.file, []string{"-file", "f"}, "file")
	fs.listVar(&v.opts, []string{"-storage-opt"}, "opts")
	fs.boolVar(&v.debug, []string{"-debug", "D"}, "debug")
	fs.boolVar(&v.all, []string{"-all", "a"}, "all")
	fs.boolVar(&v.quiet, []string{"-quiet", "q"}, "quiet")
	fs.durationVar(&v.maxAge, []string{"-max", "m"}, "max")
	return fs, v
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want testFlags
		rest []string
	}{
		{"long with next word", []string{"--graph", "/g", "x"}, testFlags{graph: "/g"}, []string{"x"}},
		{"short with next word", []string{"-g", "/g"}, testFlags{graph: "/g"}, []string{}},
		{"attached value", []string{"--graph=/g"}, testFlags{graph: "/g"}, []string{}},
		{"attached double quotes stripped", []string{`--graph="/a b"`}, testFlags{graph: "/a b"}, []string{}},
		{"attached single quotes stripped", []string{`-g='/a'`}, testFlags{graph: "/a"}, []string{}},
		{"later occurrence wins", []string{"-g", "/a", "--graph", "/b"}, testFlags{graph: "/b"}, []string{}},
		{"bool true", []string{"--debug"}, testFlags{debug: true}, []string{}},
		{"bool false", []string{"-D", "--debug=false"}, testFlags{debug: false}, []string{}},
		{"bool does not eat next word", []string{"--debug", "layers"}, testFlags{debug: true}, []string{"layers"}},
		{"bool with 1/0 form", []string{"-D=1"}, testFlags{debug: true}, []string{}},
		{"list accumulates", []string{"--storage-opt", "a=1", "--storage-opt=b=2"}, testFlags{opts: []string{"a=1", "b=2"}}, []string{}},
		{"letter grouping", []string{"-aq"}, testFlags{all: true, quiet: true}, []string{}},
		{"grouping with value letter", []string{"-qf", "F", "rest"}, testFlags{quiet: true, file: "F"}, []string{"rest"}},
		{"stop at first non-flag", []string{"-a", "pos", "-q"}, testFlags{all: true}, []string{"pos", "-q"}},
		{"double dash ends flags", []string{"--", "-q"}, testFlags{}, []string{"-q"}},
		{"lone dash is positional", []string{"-", "-q"}, testFlags{}, []string{"-", "-q"}},
		{"empty string positional", []string{"", "-q"}, testFlags{}, []string{"", "-q"}},
		{"duration", []string{"-m", "1h"}, testFlags{maxAge: time.Hour}, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			fs, v := newTestSet(&errOut)
			if err := fs.parse(tc.args); err != nil {
				t.Fatalf("parse(%q): %v (stderr %q)", tc.args, err, errOut.String())
			}
			if !reflect.DeepEqual(*v, tc.want) {
				t.Errorf("values = %+v, want %+v", *v, tc.want)
			}
			rest := append([]string{}, fs.args...)
			if !reflect.DeepEqual(rest, tc.rest) {
				t.Errorf("args = %q, want %q", rest, tc.rest)
			}
			if errOut.Len() != 0 {
				t.Errorf("unexpected stderr %q", errOut.String())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown long", []string{"--nope"}, "flag provided but not defined: --nope"},
		{"unknown short", []string{"-z"}, "flag provided but not defined: -z"},
		{"long name with one dash", []string{"-graph", "/g"}, "flag provided but not defined: -graph"},
		{"grouping with unknown letter", []string{"-az"}, "flag provided but not defined: -az"},
		{"missing value", []string{"--graph"}, "flag needs an argument: --graph"},
		{"missing value short", []string{"-f"}, "flag needs an argument: -f"},
		{"bad bool", []string{"--debug=maybe"}, `invalid boolean value "maybe" for  --debug: strconv.ParseBool: parsing "maybe": invalid syntax`},
		{"bad duration", []string{"-m", "soon"}, `invalid value "soon" for flag -m: time: invalid duration "soon"`},
		{"bad syntax", []string{"-=x"}, "bad flag syntax: -=x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errOut bytes.Buffer
			fs, _ := newTestSet(&errOut)
			err := fs.parse(tc.args)
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("parse(%q) error = %v, want %q", tc.args, err, tc.wantErr)
			}
			want := tc.wantErr + "\nSee 'prog cmd --help'.\n"
			if errOut.String() != want {
				t.Errorf("stderr = %q, want %q", errOut.String(), want)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run(arg, func(t *testing.T) {
			var errOut bytes.Buffer
			fs, _ := newTestSet(&errOut)
			called := false
			fs.usage = func() { called = true }
			if err := fs.parse([]string{arg}); !errors.Is(err, errHelp) {
				t.Fatalf("error = %v, want errHelp", err)
			}
			if !called {
				t.Error("usage not called")
			}
		})
	}
}

func TestPrintDefaults(t *testing.T) {
	t.Setenv("HOME", "/home/u")
	var out bytes.Buffer
	g, run := "/home/u/g", ""
	var opts []string
	var debug bool
	fs := newFlagSet("", "prog", &out)
	fs.stringVar(&run, []string{"-run", "R"}, "Root of the runtime state tree")
	fs.stringVar(&g, []string{"-graph", "g"}, "Root of the storage tree")
	fs.listVar(&opts, []string{"-storage-opt"}, "Set storage driver options")
	fs.boolVar(&debug, []string{"-debug", "D"}, "Print debugging information")
	fs.boolVar(&debug, []string{"#hidden", "-Hidden"}, "Shown under its visible name")
	fs.printDefaults(&out)
	want := strings.Join([]string{
		"",
		"  --debug, -D         Print debugging information",
		"  --graph, -g=~/g     Root of the storage tree",
		"  --Hidden            Shown under its visible name",
		"  --run, -R           Root of the runtime state tree",
		"  --storage-opt=[]    Set storage driver options",
		"",
	}, "\n")
	if out.String() != want {
		t.Errorf("defaults =\n%s\nwant\n%s", out.String(), want)
	}
}
