package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// This file is a small parser compatible with the "mflag" flag syntax the
// containers-storage tool uses (derived from Docker's), written for stowage:
//
//   --name / -x          booleans become true; others take the next word
//   --name=v / -x=v      attached value, one layer of surrounding quotes stripped
//   --bool=false         the only way to switch a boolean off
//   -abc                 retried as -a -b -c when "abc" is not a flag
//   --, first non-flag   end of flags; a lone "-" is positional
//
// Long names are registered with a leading dash ("-graph") so that they
// match "--graph" only, as upstream does.

// errHelp is returned when -h/--help was given and no help flag is defined.
var errHelp = errors.New("flag: help requested")

// flagValue is the value behind one flag.
type flagValue interface {
	String() string
	Set(string) error
}

type boolFlag struct{ p *bool }

func (b boolFlag) String() string { return strconv.FormatBool(*b.p) }
func (b boolFlag) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*b.p = v
	return nil
}

type stringFlag struct{ p *string }

func (s stringFlag) String() string     { return *s.p }
func (s stringFlag) Set(v string) error { *s.p = v; return nil }

// listFlag accumulates every occurrence in order.
type listFlag struct{ p *[]string }

func (l listFlag) String() string     { return fmt.Sprintf("%v", *l.p) }
func (l listFlag) Set(v string) error { *l.p = append(*l.p, v); return nil }

type durationFlag struct{ p *time.Duration }

func (d durationFlag) String() string { return d.p.String() }
func (d durationFlag) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	*d.p = x
	return nil
}

// flagDef is one defined flag with all its spellings.
type flagDef struct {
	names  []string // "-graph", "g"; a leading '#' hides a spelling from the defaults table
	usage  string
	value  flagValue
	defval string
	isBool bool
}

// flagSet is one parsing context (the global set, or one command's set).
type flagSet struct {
	name   string    // "" for the global set, else the command name
	argv0  string    // program name for "See '... --help'." lines
	errOut io.Writer // where parse errors and defaults go
	formal map[string]*flagDef
	order  []*flagDef
	args   []string // remaining words during and after Parse
	usage  func()   // called for -h/--help when no help flag is defined
}

func newFlagSet(name, argv0 string, errOut io.Writer) *flagSet {
	return &flagSet{name: name, argv0: argv0, errOut: errOut, formal: map[string]*flagDef{}}
}

func (fs *flagSet) define(v flagValue, isBool bool, names []string, usage string) {
	d := &flagDef{names: names, usage: usage, value: v, defval: v.String(), isBool: isBool}
	for _, n := range names {
		n = strings.TrimPrefix(n, "#")
		if _, dup := fs.formal[n]; dup {
			panic("flag redefined: " + n) // programming error
		}
		fs.formal[n] = d
	}
	fs.order = append(fs.order, d)
}

func (fs *flagSet) boolVar(p *bool, names []string, usage string) {
	fs.define(boolFlag{p}, true, names, usage)
}
func (fs *flagSet) stringVar(p *string, names []string, usage string) {
	fs.define(stringFlag{p}, false, names, usage)
}
func (fs *flagSet) listVar(p *[]string, names []string, usage string) {
	fs.define(listFlag{p}, false, names, usage)
}
func (fs *flagSet) durationVar(p *time.Duration, names []string, usage string) {
	fs.define(durationFlag{p}, false, names, usage)
}

// failf reports a parse error on errOut with the "See ... --help" line.
func (fs *flagSet) failf(format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	fmt.Fprintln(fs.errOut, err)
	if fs.name == "" {
		fmt.Fprintf(fs.errOut, "See '%s --help'.\n", fs.argv0)
	} else {
		fmt.Fprintf(fs.errOut, "See '%s %s --help'.\n", fs.argv0, fs.name)
	}
	return err
}

// errRetry asks Parse to retry a single-dash word letter by letter.
var errRetry = errors.New("retry as letters")

// parseOne consumes one flag word. It returns seen=false with a nil error
// when flag parsing is over.
func (fs *flagSet) parseOne() (seen bool, retry string, err error) {
	if len(fs.args) == 0 {
		return false, "", nil
	}
	s := fs.args[0]
	if len(s) < 2 || s[0] != '-' {
		return false, "", nil
	}
	if s == "--" {
		fs.args = fs.args[1:]
		return false, "", nil
	}
	name := s[1:]
	if name[0] == '=' {
		return false, "", fs.failf("bad flag syntax: %s", s)
	}
	fs.args = fs.args[1:]
	value, hasValue := "", false
	if i := strings.IndexByte(name, '='); i >= 0 {
		value, hasValue = trimQuotes(name[i+1:]), true
		name = name[:i]
	}
	f, ok := fs.formal[name]
	if !ok {
		if name == "-help" || name == "help" || name == "h" {
			if fs.usage != nil {
				fs.usage()
			}
			return false, "", errHelp
		}
		if strings.HasPrefix(name, "-") {
			return false, "", fs.failf("flag provided but not defined: -%s", name)
		}
		return false, name, errRetry
	}
	if f.isBool {
		if !hasValue {
			value = "true"
		}
		if err := f.value.Set(value); err != nil {
			return false, "", fs.failf("invalid boolean value %q for  -%s: %v", value, name, err)
		}
		return true, "", nil
	}
	if !hasValue && len(fs.args) > 0 {
		value, hasValue, fs.args = fs.args[0], true, fs.args[1:]
	}
	if !hasValue {
		return false, "", fs.failf("flag needs an argument: -%s", name)
	}
	if err := f.value.Set(value); err != nil {
		return false, "", fs.failf("invalid value %q for flag -%s: %v", value, name, err)
	}
	return true, "", nil
}

// parse parses args; afterwards fs.args holds the positional arguments.
func (fs *flagSet) parse(args []string) error {
	fs.args = args
	for {
		seen, name, err := fs.parseOne()
		if seen {
			continue
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, errRetry) {
			return err
		}
		if len(name) < 2 {
			return fs.failf("flag provided but not defined: -%s", name)
		}
		if err := fs.parseLetters(name); err != nil {
			return err
		}
	}
}

// parseLetters handles "-abc" as "-a -b -c" (a value-taking letter takes
// the next word, as upstream's retry does).
func (fs *flagSet) parseLetters(name string) error {
	quiet := *fs
	quiet.errOut = io.Discard
	quiet.usage = nil
	for _, r := range name {
		quiet.args = append([]string{"-" + string(r)}, quiet.args...)
		seen, _, err := quiet.parseOne()
		if !seen || err != nil {
			fs.args = quiet.args
			return fs.failf("flag provided but not defined: -%s", name)
		}
	}
	fs.args = quiet.args
	return nil
}

func trimQuotes(s string) string {
	if len(s) >= 2 {
		if (s[0] == '"' && s[len(s)-1] == '"') || (s[0] == '\'' && s[len(s)-1] == '\'') {
			return s[1 : len(s)-1]
		}
	}
	return s
}

// printDefaults writes the flag table: sorted by first name, hidden
// spellings left out, zero defaults omitted.
func (fs *flagSet) printDefaults(w io.Writer) {
	tw := tabwriter.NewWriter(w, 20, 1, 3, ' ', 0)
	if len(fs.order) > 0 {
		fmt.Fprintln(tw, "")
	}
	defs := append([]*flagDef(nil), fs.order...)
	key := func(d *flagDef) string { return strings.TrimLeft(strings.TrimPrefix(d.names[0], "#"), "-") }
	sort.SliceStable(defs, func(i, j int) bool {
		a, b := key(defs[i]), key(defs[j])
		if la, lb := strings.ToLower(a), strings.ToLower(b); la != lb {
			return la < lb
		}
		return a < b
	})
	home := os.Getenv("HOME")
	if home == "/" {
		home = ""
	}
	for _, d := range defs {
		var names []string
		for _, n := range d.names {
			if !strings.HasPrefix(n, "#") {
				names = append(names, n)
			}
		}
		if len(names) == 0 || d.usage == "" {
			continue
		}
		val := d.defval
		if home != "" && strings.HasPrefix(val, home) {
			val = "~" + val[len(home):]
		}
		if val == "" || val == "false" || val == "0" {
			fmt.Fprintf(tw, "  -%s", strings.Join(names, ", -"))
		} else {
			fmt.Fprintf(tw, "  -%s=%s", strings.Join(names, ", -"), val)
		}
		for _, line := range strings.Split(d.usage, "\n") {
			fmt.Fprintln(tw, "\t", line)
		}
	}
	tw.Flush()
}
