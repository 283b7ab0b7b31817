package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/pull"
)

// pullProgress is a pull.Progress the command flushes before its summary.
type pullProgress interface {
	pull.Progress
	finish()
}

// isTerminal reports whether f is a terminal bars can be drawn on (one
// with a known width).
func isTerminal(f *os.File) bool {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil && ws.Col > 0
}

func shortDigest(e pull.Event) string {
	s := e.Digest.Encoded()
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// quietProgress shows nothing.
type quietProgress struct{}

func (quietProgress) Event(pull.Event) {}
func (quietProgress) finish()          {}

// jsonProgress writes each event but EventBytes as one JSON line, and
// EventBytes at most once a second per layer.
type jsonProgress struct {
	mu   sync.Mutex
	enc  *json.Encoder
	last map[int]time.Time
}

func newJSONProgress(w io.Writer) *jsonProgress {
	return &jsonProgress{enc: json.NewEncoder(w), last: map[int]time.Time{}}
}

func (p *jsonProgress) Event(e pull.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Kind == pull.EventBytes {
		if time.Since(p.last[e.Index]) < time.Second && e.Bytes != e.Total {
			return
		}
		p.last[e.Index] = time.Now()
	}
	_ = p.enc.Encode(e) // progress is best effort
}

func (p *jsonProgress) finish() {}

// lineProgress writes one plain line per layer state change (no byte
// counts), for logs and pipes.
type lineProgress struct {
	mu sync.Mutex
	w  io.Writer
}

func newLineProgress(w io.Writer) *lineProgress { return &lineProgress{w: w} }

func (p *lineProgress) Event(e pull.Event) {
	var what string
	switch e.Kind {
	case pull.EventWaiting:
		what = "waiting for another pull of this layer"
	case pull.EventFetch:
		what = "fetching"
		if e.Total > 0 {
			what += " " + humanBytes(e.Total)
		}
	case pull.EventCopy:
		what = "extracting from a stored layer with the same content"
	case pull.EventExtracted:
		what = "verified and extracted"
	case pull.EventCommitted:
		what = "committed"
	case pull.EventReused:
		what = "already stored"
	default:
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "layer %d %s: %s\n", e.Index+1, shortDigest(e), what)
}

func (p *lineProgress) finish() {}

// barProgress draws one mpb bar per layer: bytes fetched, then the
// extracted and committed states.
type barProgress struct {
	p *mpb.Progress

	mu sync.Mutex
	// Guarded by mu.
	bars  map[int]*mpb.Bar
	state map[int]string
}

func newBarProgress(w io.Writer) *barProgress {
	return &barProgress{
		p:    mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(120*time.Millisecond)),
		bars: map[int]*mpb.Bar{}, state: map[int]string{},
	}
}

func (b *barProgress) bar(e pull.Event) *mpb.Bar {
	if bar, ok := b.bars[e.Index]; ok {
		return bar
	}
	i := e.Index
	name := fmt.Sprintf("layer %2d %s ", e.Index+1, shortDigest(e))
	bar := b.p.AddBar(max(e.Total, 0),
		mpb.BarPriority(i),
		mpb.PrependDecorators(decor.Name(name), decor.Any(func(decor.Statistics) string {
			b.mu.Lock()
			defer b.mu.Unlock()
			return fmt.Sprintf("%-10s", b.state[i])
		})),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")),
	)
	b.bars[i] = bar
	return bar
}

func (b *barProgress) Event(e pull.Event) {
	b.mu.Lock()
	bar := b.bar(e)
	done := false
	switch e.Kind {
	case pull.EventWaiting:
		b.state[e.Index] = "waiting"
	case pull.EventFetch:
		b.state[e.Index] = "fetching"
	case pull.EventCopy:
		b.state[e.Index] = "copying"
	case pull.EventExtracted:
		b.state[e.Index] = "extracted"
	case pull.EventCommitted:
		b.state[e.Index], done = "committed", true
	case pull.EventReused:
		b.state[e.Index], done = "stored", true
	}
	b.mu.Unlock()
	if e.Kind == pull.EventBytes || e.Kind == pull.EventExtracted {
		bar.SetCurrent(e.Bytes)
	}
	if done {
		bar.SetTotal(-1, true)
	}
}

// finish completes the bars (a failed pull leaves some open) and waits
// for the last redraw.
func (b *barProgress) finish() {
	b.mu.Lock()
	for _, bar := range b.bars {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}
