package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// storeCfg names the CLI under test and the store it works on.
type storeCfg struct {
	bin, graph, run, driver string
	opts                    []string // --storage-opt values
}

func (c *storeCfg) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.bin, "bin", "bin/stowage", "CLI under test")
	fs.StringVar(&c.graph, "graph", "", "graph root")
	fs.StringVar(&c.run, "run", "", "run root")
	fs.StringVar(&c.driver, "driver", "vfs", "storage driver")
}

// cmd builds one CLI invocation against the store.
func (c *storeCfg) cmd(ctx context.Context, args ...string) *exec.Cmd {
	a := []string{"--graph", c.graph, "--run", c.run, "--storage-driver", c.driver}
	for _, o := range c.opts {
		a = append(a, "--storage-opt", o)
	}
	return exec.CommandContext(ctx, c.bin, append(a, args...)...)
}

// cli runs one command to completion (2 minutes at most).
func (c *storeCfg) cli(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.cmd(ctx, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// ack is one object a command acknowledged (exit 0 and printed its ID).
type ack struct {
	kind, id string
	digest   string // layers imported from a known tarball: expected diff-digest
	state    string // live, gone (deleted with exit 0), maybe (delete killed)
}

type ackSet map[string]*ack // kind/id -> ack

func (a ackSet) add(kind, id, digest string) {
	a[kind+"/"+id] = &ack{kind: kind, id: id, digest: digest, state: "live"}
}

func (a ackSet) set(kind, id, state string) {
	if x, ok := a[kind+"/"+id]; ok {
		x.state = state
	}
}

// readAcks parses lines "layer|image|container ID [DIGEST]" and
// "gone|maybe KIND ID".
func readAcks(path string) (ackSet, error) {
	a := ackSet{}
	if path == "" {
		return a, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		w := strings.Fields(sc.Text())
		switch {
		case len(w) >= 2 && (w[0] == "layer" || w[0] == "image" || w[0] == "container"):
			d := ""
			if len(w) > 2 {
				d = w[2]
			}
			a.add(w[0], w[1], d)
		case len(w) == 3 && (w[0] == "gone" || w[0] == "maybe"):
			a.set(w[1], w[2], w[0])
		case len(w) == 0:
		default:
			return nil, fmt.Errorf("%s: bad line %q", path, sc.Text())
		}
	}
	return a, sc.Err()
}

type layerRec struct {
	ID         string         `json:"id"`
	Parent     string         `json:"parent"`
	DiffDigest string         `json:"diff-digest"`
	DiffSize   *int64         `json:"diff-size"`
	Flags      map[string]any `json:"flags"`
}

type imageRec struct {
	ID    string `json:"id"`
	Layer string `json:"layer"`
}

type containerRec struct {
	ID    string `json:"id"`
	Image string `json:"image"`
	Layer string `json:"layer"`
}

type mountRec struct {
	ID    string `json:"id"`
	Path  string `json:"path"`
	Count int    `json:"count"`
}

// report collects what verify found.
type report struct {
	problems []string
	notes    []string
}

func (r *report) bad(format string, a ...any) {
	r.problems = append(r.problems, fmt.Sprintf(format, a...))
}
func (r *report) note(format string, a ...any) { r.notes = append(r.notes, fmt.Sprintf(format, a...)) }

// loadJSON decodes one metadata file into v; a missing file is empty.
func loadJSON(r *report, path string, v any) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		r.bad("reading %s: %v", path, err)
		return
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return
	}
	if err := json.Unmarshal(data, v); err != nil {
		r.bad("%s does not parse: %v", path, err)
	}
}

type verifyOpts struct {
	deep       bool // diff every layer and compare with its diff-digest; mount it
	runCheck   bool // also run the CLI's `check` when it has one
	noTempScan bool
}

// verify opens the store through the CLI (which runs its recovery),
// then checks metadata, acknowledged objects, driver directories,
// leftovers, and (deep) every layer's content against its diff-digest.
func verify(c *storeCfg, acks ackSet, o verifyOpts) *report {
	r := &report{}
	if _, e, err := c.cli("layers"); err != nil {
		r.bad("opening the store (layers) failed: %v: %s", err, strings.TrimSpace(e))
	}
	d := c.driver
	ld, id, cd := filepath.Join(c.graph, d+"-layers"), filepath.Join(c.graph, d+"-images"), filepath.Join(c.graph, d+"-containers")
	var layers, vl []layerRec
	var images []imageRec
	var ctrs, vc []containerRec
	var mps []mountRec
	loadJSON(r, filepath.Join(ld, "layers.json"), &layers)
	loadJSON(r, filepath.Join(ld, "volatile-layers.json"), &vl)
	loadJSON(r, filepath.Join(id, "images.json"), &images)
	loadJSON(r, filepath.Join(cd, "containers.json"), &ctrs)
	loadJSON(r, filepath.Join(cd, "volatile-containers.json"), &vc)
	loadJSON(r, filepath.Join(c.run, d+"-layers", "mountpoints.json"), &mps)
	layers = append(layers, vl...)
	ctrs = append(ctrs, vc...)

	lm := map[string]layerRec{}
	for _, l := range layers {
		if _, dup := lm[l.ID]; dup {
			r.bad("layer %s listed twice", l.ID)
		}
		lm[l.ID] = l
		if inc, _ := l.Flags["incomplete"].(bool); inc {
			r.bad("layer %s is still flagged incomplete after open", l.ID)
		}
	}
	for _, l := range layers {
		if l.Parent != "" {
			if _, ok := lm[l.Parent]; !ok {
				r.bad("layer %s: parent %s missing", l.ID, l.Parent)
			}
		}
	}
	im := map[string]bool{}
	for _, i := range images {
		im[i.ID] = true
		if i.Layer != "" {
			if _, ok := lm[i.Layer]; !ok {
				r.bad("image %s: top layer %s missing", i.ID, i.Layer)
			}
		}
	}
	cm := map[string]bool{}
	for _, x := range ctrs {
		cm[x.ID] = true
		if x.Image != "" && !im[x.Image] {
			r.bad("container %s: image %s missing", x.ID, x.Image)
		}
		if _, ok := lm[x.Layer]; !ok {
			r.bad("container %s: layer %s missing", x.ID, x.Layer)
		}
	}
	for _, m := range mps {
		if _, ok := lm[m.ID]; !ok {
			r.bad("mountpoints.json names layer %s which does not exist", m.ID)
		}
	}

	// Acknowledged objects.
	exists := func(kind, oid string) bool {
		switch kind {
		case "layer":
			_, ok := lm[oid]
			return ok
		case "image":
			return im[oid]
		}
		return cm[oid]
	}
	keys := make([]string, 0, len(acks))
	for k := range acks {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := acks[k]
		ok := exists(a.kind, a.id)
		switch a.state {
		case "live":
			if !ok {
				r.bad("acknowledged %s %s is LOST", a.kind, a.id)
			} else if a.kind == "layer" && a.digest != "" && lm[a.id].DiffDigest != a.digest {
				r.bad("acknowledged layer %s: diff-digest %q, expected %s", a.id, lm[a.id].DiffDigest, a.digest)
			}
		case "gone":
			if ok {
				r.bad("%s %s was deleted (exit 0) but is still listed", a.kind, a.id)
			}
		}
	}

	// Driver directories and tar-split files.
	home := filepath.Join(c.graph, d)
	layerDir := func(lid string) string {
		if d == "overlay" {
			return filepath.Join(home, lid, "diff")
		}
		return filepath.Join(home, "dir", lid)
	}
	for _, l := range layers {
		if fi, err := os.Stat(layerDir(l.ID)); err != nil || !fi.IsDir() {
			r.bad("layer %s: driver directory %s missing", l.ID, layerDir(l.ID))
		}
		if l.DiffDigest != "" {
			if _, err := os.Stat(filepath.Join(ld, l.ID+".tar-split.gz")); err != nil {
				r.bad("layer %s: tar-split missing: %v", l.ID, err)
			}
		}
	}
	driverEntries := filepath.Join(home, "dir")
	reserved := map[string]bool{}
	if d == "overlay" {
		driverEntries = home
		reserved = map[string]bool{"l": true, "tempdirs": true, "staging": true, ".has-mount-program": true, "backingFsBlockDev": true}
	}
	if ents, err := os.ReadDir(driverEntries); err == nil {
		for _, e := range ents {
			if _, ok := lm[e.Name()]; !ok && !reserved[e.Name()] {
				r.bad("orphan driver directory %s", filepath.Join(driverEntries, e.Name()))
			}
		}
	}
	if d == "overlay" {
		if ents, err := os.ReadDir(filepath.Join(home, "l")); err == nil {
			for _, e := range ents {
				if _, err := os.Stat(filepath.Join(home, "l", e.Name())); err != nil {
					r.bad("dangling overlay link l/%s", e.Name())
				}
			}
		}
	}
	if ents, err := os.ReadDir(ld); err == nil {
		for _, e := range ents {
			if lid, ok := strings.CutSuffix(e.Name(), ".tar-split.gz"); ok {
				if _, ok := lm[lid]; !ok {
					r.bad("orphan tar-split %s", e.Name())
				}
			}
		}
	}
	orphanDirs := func(dir string, known map[string]bool, what string) {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() && len(e.Name()) == 64 && !known[e.Name()] {
				r.bad("orphan %s directory %s", what, filepath.Join(dir, e.Name()))
			}
		}
	}
	orphanDirs(id, im, "image")
	orphanDirs(cd, cm, "container")
	orphanDirs(filepath.Join(c.run, d+"-containers"), cm, "container run")

	// Leftovers of staging and atomic writes.
	if !o.noTempScan {
		for _, tdir := range []string{filepath.Join(home, "tempdirs"), filepath.Join(ld, "tmp"), filepath.Join(home, "staging"), filepath.Join(c.graph, "tmp")} {
			ents, _ := os.ReadDir(tdir)
			for _, e := range ents {
				r.bad("leftover staging entry %s", filepath.Join(tdir, e.Name()))
			}
		}
		for _, root := range []string{ld, id, cd, c.run, c.graph} {
			filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				if e.IsDir() && (p == filepath.Join(home, "dir") || (d == "overlay" && filepath.Dir(p) == home && p != filepath.Join(home, "l"))) {
					return filepath.SkipDir // layer contents
				}
				if root == c.graph && e.IsDir() && p != c.graph && p != home {
					return filepath.SkipDir // metadata dirs are walked on their own
				}
				if strings.HasPrefix(e.Name(), ".tmp-") || strings.HasSuffix(e.Name(), ".tmp") {
					r.bad("leftover temp file %s", p)
				}
				return nil
			})
		}
	}

	if d == "overlay" {
		counted := map[string]bool{}
		for _, m := range mps {
			if m.Count > 0 {
				counted[m.ID] = true
			}
		}
		leaked := 0
		if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				f := strings.Fields(line)
				if len(f) > 4 && strings.HasPrefix(f[4], home+"/") && strings.HasSuffix(f[4], "/merged") {
					if !counted[filepath.Base(filepath.Dir(f[4]))] {
						leaked++
					}
				}
			}
		}
		if leaked > 0 {
			r.note("%d overlay mounts with no count in mountpoints.json (a mount killed after mounting, before saving the count)", leaked)
		}
	}

	// Content: the diff of every layer matches its recorded digest, and
	// every layer mounts. Two at a time.
	if o.deep {
		var mu sync.Mutex
		var wg sync.WaitGroup
		work := make(chan layerRec)
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for l := range work {
					sub := &report{}
					deepCheck(c, l, sub)
					mu.Lock()
					r.problems = append(r.problems, sub.problems...)
					mu.Unlock()
				}
			}()
		}
		for _, l := range layers {
			work <- l
		}
		close(work)
		wg.Wait()
	}
	if o.runCheck {
		out, e, err := c.cli("check")
		switch {
		case strings.Contains(e, "not implemented"):
			r.note("`check` is not implemented yet; verified with faultkit's own checks only")
		case err != nil:
			r.bad("`check` reports the store inconsistent (%v): %s %s", err, strings.TrimSpace(out), strings.TrimSpace(e))
		default:
			r.note("`check` reports the store consistent")
		}
	}
	r.note("store: %d layers, %d images, %d containers; %d acknowledged objects checked", len(layers), len(images), len(ctrs), len(acks))
	return r
}

// print writes the report and returns an error when it found problems.
func (r *report) print() error {
	for _, n := range r.notes {
		fmt.Println("note:", n)
	}
	for _, p := range r.problems {
		fmt.Println("INCONSISTENT:", p)
	}
	if len(r.problems) > 0 {
		return fmt.Errorf("%d inconsistencies", len(r.problems))
	}
	fmt.Println("verify: 0 inconsistencies")
	return nil
}

func cmdVerify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	var c storeCfg
	c.flags(fs)
	ackPath := fs.String("acks", "", "file of acknowledged objects")
	deep := fs.Bool("deep", true, "diff and mount every layer")
	check := fs.Bool("check", true, "also run the CLI's check command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	acks, err := readAcks(*ackPath)
	if err != nil {
		return err
	}
	return verify(&c, acks, verifyOpts{deep: *deep, runCheck: *check}).print()
}

// deepCheck diffs one layer against its recorded diff-digest and mounts it.
func deepCheck(c *storeCfg, l layerRec, r *report) {
	if l.DiffDigest != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := c.cmd(ctx, "diff", "-u", l.ID)
		h := sha256.New()
		var e bytes.Buffer
		cmd.Stdout, cmd.Stderr = h, &e
		err := cmd.Run()
		cancel()
		if err != nil {
			r.bad("layer %s: diff failed: %v: %s", l.ID, err, strings.TrimSpace(e.String()))
		} else if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != l.DiffDigest {
			r.bad("layer %s: diff is %s, recorded diff-digest %s", l.ID, got, l.DiffDigest)
		}
	}
	out, e, err := c.cli("mount", l.ID)
	if err != nil {
		r.bad("layer %s: mount failed: %v: %s", l.ID, err, strings.TrimSpace(e))
		return
	}
	if fi, err := os.Stat(strings.TrimSpace(out)); err != nil || !fi.IsDir() {
		r.bad("layer %s: mount point %q is not a directory", l.ID, strings.TrimSpace(out))
	}
	if _, e, err := c.cli("unmount", l.ID); err != nil {
		r.bad("layer %s: unmount failed: %v: %s", l.ID, err, strings.TrimSpace(e))
	}
}
