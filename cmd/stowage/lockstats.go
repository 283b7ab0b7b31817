package main

// Lock statistics: every stowage process counts how long it waited for
// and held each store lock (lockfile.Stats). With --debug it logs the
// totals when the command ends, and every hold longer than
// $STOWAGE_LOCK_HOLD_THRESHOLD (default 100ms) as it ends. With
// $STOWAGE_LOCK_STATS=FILE it appends one JSON line per process to FILE,
// which `stowage lock-stats` sums up per lock: contention between many
// processes is visible without tracing tools.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/stowage/stowage/lockfile"
	"github.com/stowage/stowage/store"
)

// Environment variables of the lock statistics.
const (
	lockStatsEnv     = "STOWAGE_LOCK_STATS"
	lockThresholdEnv = "STOWAGE_LOCK_HOLD_THRESHOLD"
	defaultThreshold = 100 * time.Millisecond
)

// startLockStats installs the long-hold reporter and returns the function
// that, when the command ends, logs this process's totals (debug level)
// and appends them to $STOWAGE_LOCK_STATS if set. Problems with the
// statistics are reported on stderr and never change the exit status.
func startLockStats(command string, stderr io.Writer) func() {
	start := time.Now()
	threshold := defaultThreshold
	if v := os.Getenv(lockThresholdEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			fmt.Fprintf(stderr, "stowage: ignoring %s=%q: not a duration\n", lockThresholdEnv, v)
		} else {
			threshold = d
		}
	}
	lockfile.SetHoldReporter(threshold, func(path string, held time.Duration) {
		slog.Debug("long lock hold", "lock", path, "held", held.String(), "threshold", threshold.String())
	})
	return func() {
		lockfile.SetHoldReporter(0, nil)
		stats := lockfile.UsedStats()
		for _, s := range stats {
			slog.Debug("lock statistics", "lock", s.Path, "locks", s.Locks, "rlocks", s.RLocks,
				"waited", s.Waited.String(), "longest_wait", s.LongestWait.String(),
				"held", s.Held.String(), "longest_hold", s.LongestHold.String(),
				"longest_write_hold", s.LongestWriteHold.String())
		}
		path := os.Getenv(lockStatsEnv)
		if path == "" || len(stats) == 0 {
			return
		}
		rec := lockfile.StatsRecord{PID: os.Getpid(), Command: command, Start: start, End: time.Now(), Locks: stats}
		if err := lockfile.AppendStatsRecord(path, rec); err != nil {
			fmt.Fprintf(stderr, "stowage: %v\n", err)
		}
	}
}

var lockStatsCmd = &command{
	names: []string{"lock-stats"}, synopsis: "[options [...]] [FILE]",
	usage:   "Sum up lock wait/hold statistics recorded with $STOWAGE_LOCK_STATS",
	maxArgs: 1, noStore: true, newRun: func() runner { return &lockStatsRun{} },
}

type lockStatsRun struct{ cmdBase }

func (c *lockStatsRun) addFlags(fs *flagSet) { c.jsonFlag(fs) }

// lockStatsJSON is lock-stats --json output.
type lockStatsJSON struct {
	File    string             `json:"file"`
	Records int                `json:"records"`
	Locks   []lockfile.Summary `json:"locks"`
}

func (c *lockStatsRun) run(_ context.Context, _ *store.Store, args []string) error {
	path := os.Getenv(lockStatsEnv)
	if len(args) > 0 {
		path = args[0]
	}
	if path == "" {
		return fmt.Errorf("lock-stats: no statistics file: give FILE or set %s", lockStatsEnv)
	}
	recs, err := lockfile.ReadStatsRecords(path)
	if err != nil {
		return fmt.Errorf("lock-stats: %w", err)
	}
	sum := lockfile.Summarize(recs)
	out := lockStatsJSON{File: path, Records: len(recs), Locks: sum}
	if out.Locks == nil {
		out.Locks = []lockfile.Summary{}
	}
	return c.p.Output(c.json, out, func() {
		var waited, held time.Duration
		tw := tabwriter.NewWriter(c.p.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LOCK\tPROCESSES\tWAITING\tWRITE\tREAD\tWAITED\tLONGEST WAIT\tHELD\tLONGEST HOLD")
		for _, s := range sum {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", s.Path, s.Processes, s.WaitingProc, s.Locks, s.RLocks,
				dur(s.Waited), dur(s.LongestWait), dur(s.Held), dur(s.LongestHold))
			waited += s.Waited
			held += s.Held
		}
		tw.Flush()
		fmt.Fprintf(c.p.out, "%d processes; %s waiting and %s holding locks in total\n", len(recs), dur(waited), dur(held))
	})
}

// dur rounds a duration for the table.
func dur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
