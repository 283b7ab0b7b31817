package lockfile

import (
	"sync/atomic"
	"time"
)

// Stat is the wait/hold statistics of one lock file in this process.
type Stat struct {
	Path          string
	Locks, RLocks int64         // holds granted
	Waited, Held  time.Duration // totals; Waited includes abandoned waits
	LongestWait   time.Duration
	LongestHold   time.Duration
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
