package table

// Verification and salvage of location files that do not decode (used by
// the store's check and repair). Neither loads the table: both work on
// the files directly under the table's lock (read for Verify, write for
// Salvage), and Salvage drops the cache so the next lock reloads.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/stowage/stowage/internal/fsx"
)

// Salvaged describes one location file that Salvage replaced.
type Salvaged struct {
	Path    string // the location file, now holding the records that decoded
	Kept    string // the original bytes, hard-linked under this name
	Records int    // records recovered
	Cause   error  // why the original did not decode
}

// Verify decodes every location file under the read lock and returns the
// decode errors (wrapping ErrCorrupt) of those that fail, by path.
func (t *Table[R]) Verify(ctx context.Context) (map[string]error, error) {
	if err := t.lockAll(ctx, false); err != nil {
		return nil, err
	}
	defer t.unlockAll()
	out := map[string]error{}
	for _, l := range t.opts.Locations {
		if l.Path == "" {
			continue
		}
		if _, err := decodeFile[R](l.Path); err != nil {
			out[l.Path] = err
		}
	}
	return out, nil
}

// Salvage takes the write lock and, for every location file that does
// not decode, hard-links the original to "<file>.corrupt-<UTC time>",
// then atomically replaces the file with the records that still decode
// (those before the damage and any complete record after it), and
// records a write. Nothing is done to files that decode. Read-only tables
// are refused.
func (t *Table[R]) Salvage(ctx context.Context) ([]Salvaged, error) {
	if t.opts.ReadOnly {
		return nil, fmt.Errorf("%s: %w", t.lock.Path(), ErrReadOnly)
	}
	if err := t.lockAll(ctx, true); err != nil {
		return nil, err
	}
	defer t.unlockAll()
	var out []Salvaged
	recorded := false
	for _, l := range t.opts.Locations {
		if l.Path == "" {
			continue
		}
		_, cause := decodeFile[R](l.Path)
		if cause == nil || !errors.Is(cause, ErrCorrupt) {
			if cause != nil {
				return out, cause // unreadable, not corrupt: nothing to salvage
			}
			continue
		}
		data, err := os.ReadFile(l.Path)
		if err != nil {
			return out, err
		}
		recs := salvageRecords(data, t.opts.ID)
		kept, err := keepOriginal(l.Path)
		if err != nil {
			return out, err
		}
		if !recorded {
			if _, err := t.lock.RecordWrite(); err != nil {
				return out, err
			}
			recorded = true
		}
		enc, err := json.Marshal(recs)
		if err != nil {
			return out, err
		}
		if _, err := fsx.AtomicWriteFile(l.Path, enc, 0o600, fsx.AtomicOptions{SyncDir: true}); err != nil {
			return out, fmt.Errorf("saving salvaged %s: %w", l.Path, err)
		}
		out = append(out, Salvaged{Path: l.Path, Kept: kept, Records: len(recs), Cause: cause})
	}
	t.Invalidate()
	return out, nil
}

// keepOriginal hard-links path to path.corrupt-<time> (with a counter if
// that exists) and syncs the directory.
func keepOriginal(path string) (string, error) {
	base := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
	name := base
	for i := 1; ; i++ {
		err := os.Link(path, name)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("keeping corrupt %s: %w", path, err)
		}
		name = fmt.Sprintf("%s.%d", base, i)
	}
	return name, fsx.SyncDir(filepath.Dir(path))
}

// recordStart is how every record of the stores' files starts (the id
// field is first in all of them).
var recordStart = []byte(`{"id":`)

// salvageRecords returns the records of a damaged JSON array: those
// decoded in order until the damage, then every complete object found by
// scanning for the next record start. Records without a valid ID and
// repeated IDs are dropped.
func salvageRecords[R any](data []byte, id func(*R) string) []*R {
	var out []*R
	seen := map[string]bool{}
	keep := func(r *R) {
		i := id(r)
		if ValidID(i) == nil && !seen[i] {
			seen[i] = true
			out = append(out, r)
		}
	}
	pos := len(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err == nil && tok == json.Delim('[') {
		for dec.More() {
			before := dec.InputOffset()
			var r R
			if err := dec.Decode(&r); err != nil {
				pos = int(before)
				break
			}
			keep(&r)
		}
	} else {
		pos = 0
	}
	for pos < len(data) {
		i := bytes.Index(data[pos:], recordStart)
		if i < 0 {
			break
		}
		start := pos + i
		d := json.NewDecoder(bytes.NewReader(data[start:]))
		var r R
		if err := d.Decode(&r); err == nil {
			keep(&r)
			pos = start + int(d.InputOffset())
		} else {
			pos = start + 1
		}
	}
	if out == nil {
		out = []*R{}
	}
	return out
}

// PartialFields returns the top-level fields that decode completely of
// the record of id in damaged data (a file Salvage kept): the object
// starting `{"id":"<id>"` is read key by key until the damage, and the
// occurrence with the most fields wins. Nothing is returned for a record
// that cannot be found. A field missing from the result may have been
// absent or lost: callers take what is there and infer nothing from the
// rest.
func PartialFields(data []byte, id string) map[string]json.RawMessage {
	key, err := json.Marshal(id)
	if err != nil {
		return nil
	}
	start := append(append([]byte(nil), recordStart...), key...)
	var best map[string]json.RawMessage
	for pos := 0; pos < len(data); {
		i := bytes.Index(data[pos:], start)
		if i < 0 {
			break
		}
		if m := leadingFields(data[pos+i:]); len(m) > len(best) {
			best = m
		}
		pos += i + 1
	}
	return best
}

// leadingFields decodes the key/value pairs of the object at the start
// of data until one does not decode.
func leadingFields(data []byte) map[string]json.RawMessage {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		k, ok := tok.(string)
		if !ok {
			break
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			break
		}
		out[k] = v
	}
	return out
}
