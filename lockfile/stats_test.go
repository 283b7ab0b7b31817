package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestStatsRecordsRoundTripAndSummary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stats")
	recs := []StatsRecord{
		{PID: 1, Command: "import-layer", Locks: []Stat{
			{Path: "/g/vfs-layers/layers.lock", Locks: 2, Waited: 3 * time.Second, Held: 10 * time.Millisecond, LongestWait: 2 * time.Second, LongestHold: 6 * time.Millisecond, LongestWriteHold: 5 * time.Millisecond},
			{Path: "/g/storage.lock", RLocks: 1, Held: time.Millisecond, LongestHold: time.Millisecond},
			{Path: "/g/unused.lock"},
		}},
		{PID: 2, Command: "layers", Locks: []Stat{
			{Path: "/g/vfs-layers/layers.lock", RLocks: 1, Locks: 1, Held: 2 * time.Millisecond, LongestHold: 2 * time.Millisecond, LongestWriteHold: 7 * time.Millisecond},
		}},
	}
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		go func() { // owner: wg
			defer wg.Done()
			if err := AppendStatsRecord(path, r); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := ReadStatsRecords(path)
	if err != nil || len(got) != 2 {
		t.Fatalf("read %d records, %v", len(got), err)
	}
	sum := Summarize(got)
	if len(sum) != 2 {
		t.Fatalf("summary %+v, want 2 locks (the unused one dropped)", sum)
	}
	l := sum[0]
	if l.Path != "/g/vfs-layers/layers.lock" || l.Processes != 2 || l.WaitingProc != 1 || l.Locks != 3 || l.RLocks != 1 || l.LongestWriteHold != 7*time.Millisecond ||
		l.Waited != 3*time.Second || l.Held != 12*time.Millisecond || l.LongestWait != 2*time.Second || l.LongestHold != 6*time.Millisecond {
		t.Errorf("layers.lock summary %+v", l)
	}
	// A torn last line (a process killed mid-write) is skipped; a bad line
	// in the middle is an error.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"pid":3,"comm`)
	f.Close()
	if got, err := ReadStatsRecords(path); err != nil || len(got) != 2 {
		t.Errorf("torn last line: %d records, %v", len(got), err)
	}
	if err := AppendStatsRecord(path, recs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatsRecords(path); !errors.Is(err, ErrBadStatsRecord) {
		t.Errorf("bad middle line: %v", err)
	}
	if got, err := ReadStatsRecords(filepath.Join(t.TempDir(), "missing")); err != nil || got != nil {
		t.Errorf("missing file: %v, %v", got, err)
	}
}

func TestUsedStats(t *testing.T) {
	f, err := Get(filepath.Join(t.TempDir(), "u.lock"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range UsedStats() {
		if s.Path == f.Path() {
			t.Fatalf("unused lock listed: %+v", s)
		}
	}
	if err := f.Lock(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.Unlock()
	found := false
	for _, s := range UsedStats() {
		found = found || (s.Path == f.Path() && s.Locks == 1)
	}
	if !found {
		t.Error("used lock not listed")
	}
}
