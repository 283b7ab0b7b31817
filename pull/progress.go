package pull

import "github.com/opencontainers/go-digest"

// EventKind says what happened to a layer.
type EventKind string

// Event kinds, in the order one layer goes through them. A layer found in
// the store gets only EventReused.
const (
	EventWaiting   EventKind = "waiting"   // another pull holds the layer's lock
	EventFetch     EventKind = "fetch"     // fetching started (Total: blob size, -1 unknown)
	EventCopy      EventKind = "copy"      // extracting a copy of a stored layer with the same diff ID
	EventBytes     EventKind = "bytes"     // Bytes read so far (compressed)
	EventExtracted EventKind = "extracted" // verified and extracted into staging
	EventCommitted EventKind = "committed" // the layer is in the store
	EventReused    EventKind = "reused"    // already in the store; not fetched
)

// Event is one progress report about layer Index (0 is the base layer).
type Event struct {
	Kind    EventKind     `json:"event"`
	Index   int           `json:"layer"`
	Digest  digest.Digest `json:"digest"` // the blob digest
	LayerID string        `json:"id"`
	Bytes   int64         `json:"bytes,omitempty"`
	Total   int64         `json:"total,omitempty"`
}

// Progress receives events. Calls come from several goroutines at once;
// an implementation must be safe for that and should not block for long
// (it runs on the fetch path). EventBytes comes at most every 64 KiB read.
type Progress interface {
	Event(Event)
}

// nopProgress drops events.
type nopProgress struct{}

func (nopProgress) Event(Event) {}
