package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/stowage/stowage/store"
)

var gcCmd = &command{
	names: []string{"gc"}, usage: "Perform garbage collection",
	maxArgs: 0, newRun: func() runner { return &gcRun{} },
}

// gcRun removes unreferenced directories and files (store.GC); it prints
// nothing (the removed paths at debug level), JSON "" or the error.
type gcRun struct{ cmdBase }

func (c *gcRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

func (c *gcRun) run(ctx context.Context, st *store.Store, _ []string) error {
	removed, err := st.GC(ctx)
	for _, p := range removed {
		slog.Debug(fmt.Sprintf("gc removed %s", p))
	}
	if c.json {
		return c.p.ErrorJSON(err)
	}
	return err
}

var checkCmd = &command{
	names: []string{"check"}, usage: "Check storage consistency",
	maxArgs: 0, noStore: true, newRun: func() runner { return &checkRun{} },
}

var repairCmd = &command{
	names: []string{"repair"}, usage: "Check storage consistency and remove what is damaged (check -r)",
	maxArgs: 0, noStore: true, newRun: func() runner { return &checkRun{repair: true} },
}

// checkRun is `check` (and `repair`, which is `check -r`).
type checkRun struct {
	cmdBase
	quick, repair, force bool
	maxAge               time.Duration
}

func (c *checkRun) addFlags(fs *flagSet) {
	c.maxAge = store.DefaultMaxUnreferencedAge
	fs.boolVar(&c.quick, []string{"-quick", "q"}, "Perform only quick checks")
	fs.boolVar(&c.repair, []string{"-repair", "r"}, "Remove damaged images and layers")
	fs.boolVar(&c.force, []string{"-force", "f"}, "Remove damaged containers")
	fs.durationVar(&c.maxAge, []string{"-max", "m"}, "Maximum allowed age for unreferenced layers")
	c.jsonFlag(fs)
}

// run opens the store without loading it (so that metadata that does not
// decode can be reported and salvaged), checks or repairs, prints the
// report and ends with a forced shutdown, as containers-storage does.
func (c *checkRun) run(ctx context.Context, _ *store.Store, _ []string) error {
	if c.force {
		c.repair = true
	}
	opts, err := c.g.storeOptions()
	if err != nil {
		return fmt.Errorf("error initializing: %w", err)
	}
	st, err := store.OpenForCheck(ctx, opts)
	if err != nil {
		return fmt.Errorf("error initializing: %w", err)
	}
	defer st.Close()
	copts := store.CheckOptions{Quick: c.quick, MaxUnreferencedAge: c.maxAge}
	var report *store.CheckReport
	var repairErrs []error
	if c.repair {
		report, repairErrs = st.Repair(ctx, store.RepairOptions{CheckOptions: copts, RemoveContainers: c.force})
	} else {
		report, err = st.Check(ctx, copts)
		if err != nil {
			return err
		}
	}
	if report == nil { // the repair could not start
		return errors.Join(repairErrs...)
	}
	corrupt := !c.repair && len(report.Files) > 0 && anyCorrupt(report)
	if !corrupt {
		defer func() {
			if _, err := st.Shutdown(ctx, true); err != nil {
				c.p.Errorf("shutdown: %v\n", err)
			}
		}()
	}
	if c.json {
		if err := c.p.JSON(report); err != nil {
			return err
		}
	} else {
		c.printReport(report)
	}
	if !c.repair {
		if report.Empty() {
			return nil
		}
		msg := fmt.Sprintf("%d layer errors, %d read-only layer errors, %d image errors, %d read-only image errors, %d container errors",
			len(report.Layers), len(report.ROLayers), len(report.Images), len(report.ROImages), len(report.Containers))
		if n := len(report.Files); n > 0 {
			msg += fmt.Sprintf(", %d store file errors", n)
		}
		return errors.New(msg)
	}
	if len(repairErrs) > 0 {
		if c.json {
			if err := c.p.JSON(errStrings(repairErrs)); err != nil {
				return err
			}
		} else {
			for _, e := range repairErrs {
				c.p.Errorf("%v\n", e)
			}
		}
		return exitStatus(1)
	}
	// Orphan container directories were removed: they are not containers left damaged.
	containers := 0
	for _, errs := range report.Containers {
		if slices.ContainsFunc(errs, func(e error) bool { return !errors.Is(e, store.ErrOrphanData) }) {
			containers++
		}
	}
	roFiles := 0 // metadata of read-only stores that does not decode
	for _, errs := range report.Files {
		if slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, store.ErrReadOnlyStoreSetAside) }) {
			roFiles++
		}
	}
	if len(report.ROLayers) > 0 || len(report.ROImages) > 0 || (!c.force && containers > 0) || roFiles > 0 {
		msg := fmt.Sprintf("%d read-only layer errors, %d read-only image errors", len(report.ROLayers), len(report.ROImages))
		if !c.force {
			msg += fmt.Sprintf(", %d container errors", containers)
		}
		if roFiles > 0 {
			msg += fmt.Sprintf(", %d read-only store file errors", roFiles)
		}
		return errors.New(msg)
	}
	return nil
}

func anyCorrupt(r *store.CheckReport) bool {
	for _, errs := range r.Files {
		for _, e := range errs {
			if errors.Is(e, store.ErrCorruptMetadata) {
				return true
			}
		}
	}
	return false
}

func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// printReport prints the plain report: a header line per damaged object,
// then one line per problem, indented by one space.
func (c *checkRun) printReport(r *store.CheckReport) {
	groups := []struct {
		title string
		m     map[string][]error
	}{
		{"layer", r.Layers}, {"read-only layer", r.ROLayers},
		{"image", r.Images}, {"read-only image", r.ROImages},
		{"container", r.Containers}, {"file", r.Files},
	}
	for _, g := range groups {
		ids := make([]string, 0, len(g.m))
		for id := range g.m {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if len(g.m[id]) == 0 {
				continue
			}
			c.p.Printf("%s %s:\n", g.title, id)
			for _, e := range g.m[id] {
				c.p.Printf(" %v\n", e)
			}
		}
	}
}
