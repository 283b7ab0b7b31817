package lockfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync/atomic"
	"time"
)

// Stat is the wait/hold statistics of one lock file in this process.
// Durations are nanoseconds in JSON.
type Stat struct {
	Path        string        `json:"path"`
	Locks       int64         `json:"locks"`  // write holds granted
	RLocks      int64         `json:"rlocks"` // read holds granted
	Waited      time.Duration `json:"waited"` // total; includes abandoned waits
	Held        time.Duration `json:"held"`   // total over all holds
	LongestWait time.Duration `json:"longest_wait"`
	LongestHold time.Duration `json:"longest_hold"`
	// LongestWriteHold is the longest write hold: for layers.lock, the
	// longest layer commit (read holds are lookups and planning).
	LongestWriteHold time.Duration `json:"longest_write_hold"`
}

// Used reports whether the lock was waited for or held at all.
func (s Stat) Used() bool { return s.Locks+s.RLocks > 0 || s.Waited > 0 }

// UsedStats returns Stats without the lock files this process opened but
// never waited for or held.
func UsedStats() []Stat {
	var out []Stat
	for _, s := range Stats() {
		if s.Used() {
			out = append(out, s)
		}
	}
	return out
}

// StatsRecord is one process's lock statistics as appended to a stats
// file (one JSON object per line).
type StatsRecord struct {
	PID     int       `json:"pid"`
	Command string    `json:"command"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Locks   []Stat    `json:"locks"`
}

// AppendStatsRecord appends rec as one line to the file at path (created
// 0600 if missing). The line goes out in a single O_APPEND write, so the
// records of concurrent processes do not interleave.
func AppendStatsRecord(path string, rec StatsRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock statistics file: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("lock statistics file: %w", err)
	}
	return nil
}

// ErrBadStatsRecord marks a line of a stats file that does not parse.
var ErrBadStatsRecord = errors.New("malformed lock statistics record")

// ReadStatsRecords reads a file written by AppendStatsRecord. A missing
// file has no records; a line that does not parse is an error naming it
// (a torn last line, from a process killed mid-write, is skipped).
func ReadStatsRecords(path string) ([]StatsRecord, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []StatsRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r StatsRecord
		if err := json.Unmarshal(line, &r); err != nil {
			if n == bytes.Count(data, []byte("\n"))+1 { // unterminated last line
				break
			}
			return nil, fmt.Errorf("%s line %d: %w: %v", path, n, ErrBadStatsRecord, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// Summary totals the statistics of one lock file over many processes.
type Summary struct {
	Stat
	Processes   int `json:"processes"`     // processes that used the lock
	WaitingProc int `json:"waiting_procs"` // processes that waited 1 ms or more at once
}

// Summarize totals records per lock path, sorted by total wait (longest
// first), then path.
func Summarize(recs []StatsRecord) []Summary {
	by := map[string]*Summary{}
	for _, r := range recs {
		for _, s := range r.Locks {
			if !s.Used() {
				continue
			}
			t := by[s.Path]
			if t == nil {
				t = &Summary{Stat: Stat{Path: s.Path}}
				by[s.Path] = t
			}
			t.Processes++
			if s.LongestWait >= time.Millisecond {
				t.WaitingProc++
			}
			t.Locks += s.Locks
			t.RLocks += s.RLocks
			t.Waited += s.Waited
			t.Held += s.Held
			t.LongestWait = max(t.LongestWait, s.LongestWait)
			t.LongestHold = max(t.LongestHold, s.LongestHold)
			t.LongestWriteHold = max(t.LongestWriteHold, s.LongestWriteHold)
		}
	}
	out := make([]Summary, 0, len(by))
	for _, t := range by {
		out = append(out, *t)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Waited != out[j].Waited {
			return out[i].Waited > out[j].Waited
		}
		return out[i].Path < out[j].Path
	})
	return out
}

type holdReporter struct {
	threshold time.Duration
	fn        func(path string, held time.Duration)
}

var currentHoldReporter atomic.Pointer[holdReporter]

// SetHoldReporter makes Unlock call fn (outside any lock) whenever a Lock or
// RLock hold on a File lasted at least threshold. A nil fn disables it. fn
// must be safe for concurrent use and should be quick (e.g. log).
func SetHoldReporter(threshold time.Duration, fn func(path string, held time.Duration)) {
	if fn == nil {
		currentHoldReporter.Store(nil)
		return
	}
	currentHoldReporter.Store(&holdReporter{threshold: threshold, fn: fn})
}

func reportHold(path string, held time.Duration) {
	if r := currentHoldReporter.Load(); r != nil && held >= r.threshold {
		r.fn(path, held)
	}
}
