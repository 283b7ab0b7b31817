package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// storm is the shared state of one kill storm.
type storm struct {
	c       storeCfg
	tars    []string
	digests map[string]string

	mu         sync.Mutex
	rng        *rand.Rand
	acks       ackSet
	layers     []string // acknowledged, not being deleted
	images     []string
	containers []string
	imageTop   map[string]string    // image -> its top layer
	parentOf   map[string]string    // layer -> parent layer
	running    map[*exec.Cmd]string // live child -> its command line
	killed     map[*exec.Cmd]bool   // SIGKILL sent
	kills      int                  // children that died of our SIGKILL
	pKill      float64              // share of commands that get a SIGKILL
	avgDur     map[string]time.Duration
	killsByOp  map[string]int
	ops        map[string]int
	failures   map[string]int // non-zero exits not caused by a kill
	failSample []string
}

func (s *storm) pick(list []string) string {
	if len(list) == 0 {
		return ""
	}
	return list[s.rng.Intn(len(list))]
}

func remove(list []string, x string) []string {
	for i, y := range list {
		if y == x {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// exec runs one CLI command as a killable child. It reports its stdout,
// whether it exited 0, and whether our SIGKILL ended it.
func (s *storm) exec(op string, args ...string) (string, bool, bool) {
	cmd := s.c.cmd(context.Background(), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Start(); err != nil {
		return "", false, false
	}
	t0 := time.Now()
	s.mu.Lock()
	s.running[cmd] = op
	s.ops[op]++
	var timer *time.Timer
	if s.rng.Float64() < s.pKill {
		// Kill at a uniformly random moment of the command's expected
		// life (its mean duration so far, plus a margin), so that kills
		// land in every phase: start, extraction, commit, printing.
		avg := s.avgDur[op]
		if avg == 0 {
			avg = 100 * time.Millisecond
		}
		delay := time.Duration(s.rng.Int63n(int64(avg) * 13 / 10))
		timer = time.AfterFunc(delay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, live := s.running[cmd]; live && cmd.Process.Signal(syscall.SIGKILL) == nil {
				s.killed[cmd] = true
			}
		})
	}
	s.mu.Unlock()
	err := cmd.Wait()
	if timer != nil {
		timer.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, cmd)
	wasKilled := s.killed[cmd]
	delete(s.killed, cmd)
	if err == nil {
		d := time.Since(t0)
		if s.avgDur[op] == 0 {
			s.avgDur[op] = d
		} else {
			s.avgDur[op] = (s.avgDur[op]*7 + d) / 8
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && wasKilled {
			s.kills++
			s.killsByOp[op]++
			return "", false, true
		}
	}
	if err != nil {
		s.failures[op]++
		if len(s.failSample) < 12 {
			s.failSample = append(s.failSample, fmt.Sprintf("%s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(e.String())))
		}
		return o.String(), false, false
	}
	return o.String(), true, false
}

func firstID(out string) string {
	f := strings.Fields(out)
	if len(f) == 0 || len(f[0]) != 64 {
		return ""
	}
	return f[0]
}

// step runs one random operation and records what was acknowledged.
func (s *storm) step() {
	s.mu.Lock()
	n := s.rng.Intn(100)
	parent := ""
	if s.rng.Intn(3) == 0 {
		parent = s.pick(s.layers)
	}
	tar := s.tars[s.rng.Intn(len(s.tars))]
	layer, image, ctr := s.pick(s.layers), s.pick(s.images), s.pick(s.containers)
	delKind := ""
	switch {
	case n >= 70 && n < 85:
		// delete something we created, taking it out of the pools first
		switch k := s.rng.Intn(10); {
		case k < 4 && ctr != "":
			delKind, s.containers = "container", remove(s.containers, ctr)
		case k < 7 && image != "":
			delKind, s.images = "image", remove(s.images, image)
		case len(s.layers) > 4:
			delKind, s.layers = "layer", remove(s.layers, layer)
		}
	}
	s.mu.Unlock()

	digest2parent := parent
	record := func(kind, id, digest string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.acks.add(kind, id, digest)
		switch kind {
		case "layer":
			s.layers = append(s.layers, id)
			s.parentOf[id] = digest2parent
		case "image":
			s.images = append(s.images, id)
			s.imageTop[id] = layer
		case "container":
			s.containers = append(s.containers, id)
		}
	}
	switch {
	case n < 40:
		args := []string{"import-layer", "-f", tar}
		if parent != "" {
			args = []string{"import-layer", "-f", tar, parent}
		}
		out, ok, _ := s.exec("import-layer", args...)
		if id := firstID(out); ok && id != "" {
			record("layer", id, s.digests[tar])
		}
	case n < 48:
		args := []string{"create-layer"}
		if parent != "" {
			args = append(args, parent)
		}
		out, ok, _ := s.exec("create-layer", args...)
		if id := firstID(out); ok && id != "" {
			record("layer", id, "")
		}
	case n < 58 && layer != "":
		out, ok, _ := s.exec("create-image", "create-image", layer)
		if id := firstID(out); ok && id != "" {
			record("image", id, "")
		}
	case n < 70 && image != "":
		out, ok, _ := s.exec("create-container", "create-container", image)
		if id := firstID(out); ok && id != "" {
			record("container", id, "")
		}
	case delKind != "":
		target := map[string]string{"container": ctr, "image": image, "layer": layer}[delKind]
		_, ok, killed := s.exec("delete-"+delKind, "delete-"+delKind, target)
		s.mu.Lock()
		if delKind == "image" && (ok || killed) {
			// delete-image also removes the image's layer chain up to
			// the first layer something else uses: those may be gone.
			for l := s.imageTop[target]; l != ""; l = s.parentOf[l] {
				s.acks.set("layer", l, "maybe")
				s.layers = remove(s.layers, l)
			}
		}
		switch {
		case ok:
			s.acks.set(delKind, target, "gone")
		case killed:
			s.acks.set(delKind, target, "maybe")
		default: // refused (in use): it stays and goes back to the pool
			switch delKind {
			case "container":
				s.containers = append(s.containers, target)
			case "image":
				s.images = append(s.images, target)
			case "layer":
				s.layers = append(s.layers, target)
			}
		}
		s.mu.Unlock()
	case n >= 85 && ctr != "":
		if _, ok, _ := s.exec("mount", "mount", ctr); ok {
			s.exec("unmount", "unmount", ctr)
		}
	case layer != "":
		if _, ok, _ := s.exec("mount", "mount", layer); ok {
			s.exec("unmount", "unmount", layer)
		}
	}
}

func cmdStorm(args []string) error {
	fs := flag.NewFlagSet("storm", flag.ContinueOnError)
	s := &storm{running: map[*exec.Cmd]string{}, killed: map[*exec.Cmd]bool{}, acks: ackSet{},
		killsByOp: map[string]int{}, avgDur: map[string]time.Duration{}, imageTop: map[string]string{}, parentOf: map[string]string{}, ops: map[string]int{}, failures: map[string]int{}}
	s.c.flags(fs)
	tarDir := fs.String("tars", "", "directory written by gentars")
	kills := fs.Int("kills", 200, "SIGKILLs to land")
	workers := fs.Int("workers", 4, "concurrent commands")
	fs.Float64Var(&s.pKill, "p", 0.5, "share of commands that get killed")
	seed := fs.Int64("seed", time.Now().UnixNano(), "random seed")
	maxDur := fs.Duration("max", 3*time.Minute, "give up killing after this long")
	ackOut := fs.String("acks-out", "", "write the acknowledged objects here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Printf("storm: driver %s, seed %d, %d workers, target %d kills\n", s.c.driver, *seed, *workers, *kills)
	s.rng = rand.New(rand.NewSource(*seed))
	var err error
	if s.digests, err = readDigests(*tarDir); err != nil {
		return err
	}
	for t := range s.digests {
		s.tars = append(s.tars, t)
	}
	sort.Strings(s.tars)
	// A few base layers nobody kills.
	for _, t := range s.tars[:3] {
		out, _, err := s.c.cli("import-layer", "-f", t)
		if err != nil {
			return fmt.Errorf("seeding the store: %v", err)
		}
		s.acks.add("layer", firstID(out), s.digests[t])
		s.layers = append(s.layers, firstID(out))
	}
	start := time.Now()
	deadline := start.Add(*maxDur)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s.mu.Lock()
				stop := s.kills >= *kills || time.Now().After(deadline)
				s.mu.Unlock()
				if stop {
					return
				}
				s.step()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Printf("storm: %d SIGKILLs landed in %.1fs\n", s.kills, elapsed.Seconds())
	fmt.Printf("storm: commands run %v\n", s.ops)
	fmt.Printf("storm: kills by command %v\n", s.killsByOp)
	fmt.Printf("storm: non-kill failures %v\n", s.failures)
	for _, f := range s.failSample {
		fmt.Println("  failure sample:", f)
	}
	if *ackOut != "" {
		var b bytes.Buffer
		for _, a := range s.acks {
			fmt.Fprintf(&b, "%s %s %s\n", a.kind, a.id, a.digest)
			if a.state != "live" {
				fmt.Fprintf(&b, "%s %s %s\n", a.state, a.kind, a.id)
			}
		}
		os.WriteFile(*ackOut, b.Bytes(), 0o644)
	}
	t1 := time.Now()
	rep := verify(&s.c, s.acks, verifyOpts{deep: true, runCheck: true})
	fmt.Printf("storm: verify took %.1fs\n", time.Since(t1).Seconds())
	if s.kills < *kills {
		rep.bad("only %d of %d SIGKILLs landed before the %v limit", s.kills, *kills, *maxDur)
	}
	return rep.print()
}
