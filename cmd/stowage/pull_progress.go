package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
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
// with a known size).
func isTerminal(f *os.File) bool {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	return err == nil && ws.Col > 0 && ws.Row > 0 // mpb draws nothing on a 0-row terminal
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
// extracted and committed states. mpb calls the decorators from its own
// goroutines while Event may be waiting inside mpb (AddBar), so a
// decorator reads only its layer's atomic state, never b.mu.
type barProgress struct {
	p *mpb.Progress

	mu sync.Mutex
	// Guarded by mu.
	bars map[int]*layerBar
}

type layerBar struct {
	bar   *mpb.Bar
	state atomic.Value // string
}

func newBarProgress(w io.Writer) *barProgress {
	return &barProgress{
		p:    mpb.New(mpb.WithOutput(w), mpb.WithWidth(32), mpb.WithRefreshRate(120*time.Millisecond)),
		bars: map[int]*layerBar{},
	}
}

// layer returns e's bar, adding it on first use.
//
// Locking: b.mu held.
func (b *barProgress) layerLocked(e pull.Event) *layerBar {
	if lb, ok := b.bars[e.Index]; ok {
		return lb
	}
	lb := &layerBar{}
	lb.state.Store("")
	name := fmt.Sprintf("layer %2d %s ", e.Index+1, shortDigest(e))
	lb.bar = b.p.AddBar(max(e.Total, 0),
		mpb.BarPriority(e.Index),
		mpb.PrependDecorators(decor.Name(name), decor.Any(func(decor.Statistics) string {
			return fmt.Sprintf("%-10s", lb.state.Load().(string))
		})),
		mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f")),
	)
	b.bars[e.Index] = lb
	return lb
}

var barStates = map[pull.EventKind]string{
	pull.EventWaiting: "waiting", pull.EventFetch: "fetching", pull.EventCopy: "copying",
	pull.EventExtracted: "extracted", pull.EventCommitted: "committed", pull.EventReused: "stored",
}

func (b *barProgress) Event(e pull.Event) {
	b.mu.Lock()
	lb := b.layerLocked(e)
	b.mu.Unlock()
	if st, ok := barStates[e.Kind]; ok {
		lb.state.Store(st)
	}
	if e.Kind == pull.EventBytes || e.Kind == pull.EventExtracted {
		lb.bar.SetCurrent(e.Bytes)
	}
	if e.Kind == pull.EventCommitted || e.Kind == pull.EventReused {
		lb.bar.SetTotal(-1, true)
	}
}

// finish completes the bars (a failed pull leaves some open) and waits
// for the last redraw.
func (b *barProgress) finish() {
	b.mu.Lock()
	for _, lb := range b.bars {
		if !lb.bar.Completed() {
			lb.bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}
