package tarsplit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"path/filepath"
	"unicode/utf8"

	"github.com/vbatts/tar-split/tar/storage"
)

// unpacker reads tar-split entries as storage.NewJSONUnpacker does (the
// same entries, the same errors, the same duplicate-path check), about ten
// times faster on the lines the tar-split packer writes: a line in that
// canonical shape ({"type":..,"name":..,"name_raw":..,"size":..,
// "payload":..,"position":..}, optional fields omitted, no escapes) is
// parsed by hand; any other line goes through json.Unmarshal, and a line
// that is not exactly one JSON value hands the rest of the stream to a
// json.Decoder, which then reports what the library would have.
//
// The entry Next returns, and its Payload, are valid until the next call.
type unpacker struct {
	br      *bufio.Reader
	dec     *json.Decoder // set once the stream left the one-value-per-line shape
	seen    map[string]struct{}
	e       storage.Entry
	payload []byte // reused decode buffer of e.Payload
	long    []byte // a line longer than br's buffer
}

func newUnpacker(r io.Reader) *unpacker {
	return &unpacker{br: bufio.NewReaderSize(r, 64<<10), seen: map[string]struct{}{}}
}

// Next returns the next entry, or io.EOF after the last.
func (u *unpacker) Next() (*storage.Entry, error) {
	if u.dec != nil {
		return u.decode()
	}
	line, err := u.readLine()
	if len(line) == 0 {
		if err == nil {
			err = io.ErrUnexpectedEOF // unreachable: a line holds at least its '\n'
		}
		return nil, err
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	body := line
	if body[len(body)-1] == '\n' {
		body = body[:len(body)-1]
	}
	u.e = storage.Entry{}
	if !u.parseCanonical(body) {
		u.e = storage.Entry{}
		if json.Unmarshal(body, &u.e) != nil {
			// Not one JSON value on this line (or a type error): let
			// encoding/json read from here on, exactly as the library does.
			u.dec = json.NewDecoder(io.MultiReader(bytes.NewReader(bytes.Clone(line)), u.br))
			return u.decode()
		}
	}
	return u.check()
}

func (u *unpacker) decode() (*storage.Entry, error) {
	u.e = storage.Entry{}
	if err := u.dec.Decode(&u.e); err != nil {
		return nil, err
	}
	return u.check()
}

// check applies the library's duplicate-path rule.
func (u *unpacker) check() (*storage.Entry, error) {
	if u.e.Type == storage.FileType {
		name := filepath.Clean(u.e.GetName())
		if _, ok := u.seen[name]; ok {
			return nil, storage.ErrDuplicatePath
		}
		u.seen[name] = struct{}{}
	}
	return &u.e, nil
}

// readLine returns the next line with its '\n' (none at the end of the
// stream); the slice is valid until the next read.
func (u *unpacker) readLine() ([]byte, error) {
	line, err := u.br.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	u.long = append(u.long[:0], line...)
	for err == bufio.ErrBufferFull {
		line, err = u.br.ReadSlice('\n')
		u.long = append(u.long, line...)
	}
	if cap(u.long) > 16<<20 {
		// Do not keep a huge header's buffer for the rest of the stream.
		l := u.long
		u.long = nil
		return l, err
	}
	return u.long, err
}

// parseCanonical fills u.e from a line in the packer's own shape and
// reports whether it was one; on false u.e is garbage.
func (u *unpacker) parseCanonical(b []byte) bool {
	p := canonParser{b: b}
	if !p.lit(`{"type":`) || !p.int(func(v int64) { u.e.Type = storage.Type(v) }) {
		return false
	}
	if p.lit(`,"name":`) {
		s, ok := p.str()
		if !ok || !utf8.Valid(s) {
			return false
		}
		u.e.Name = string(s)
	}
	if p.lit(`,"name_raw":`) {
		s, ok := p.str()
		if !ok {
			return false
		}
		raw, ok := decodeBase64(nil, s)
		if !ok {
			return false
		}
		u.e.NameRaw = raw
	}
	if p.lit(`,"size":`) && !p.int(func(v int64) { u.e.Size = v }) {
		return false
	}
	if !p.lit(`,"payload":`) {
		return false
	}
	if !p.lit(`null`) {
		s, ok := p.str()
		if !ok {
			return false
		}
		if u.payload, ok = decodeBase64(u.payload, s); !ok {
			return false
		}
		u.e.Payload = u.payload
	}
	if !p.lit(`,"position":`) || !p.int(func(v int64) { u.e.Position = int(v) }) {
		return false
	}
	return p.lit(`}`) && len(p.b) == 0
}

// decodeBase64 decodes s as encoding/json decodes a []byte field, into
// buf's storage when it is large enough; the result is never nil.
func decodeBase64(buf, s []byte) ([]byte, bool) {
	n := base64.StdEncoding.DecodedLen(len(s))
	if buf == nil || cap(buf) < n {
		buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(buf[:n], s)
	if err != nil {
		return nil, false
	}
	return buf[:n], true
}

type canonParser struct{ b []byte }

func (p *canonParser) lit(s string) bool {
	if len(p.b) < len(s) || string(p.b[:len(s)]) != s {
		return false
	}
	p.b = p.b[len(s):]
	return true
}

// int parses a JSON integer of at most 18 digits (no overflow to handle).
func (p *canonParser) int(set func(int64)) bool {
	i, neg := 0, false
	if len(p.b) > 0 && p.b[0] == '-' {
		neg, i = true, 1
	}
	start := i
	var v int64
	for i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' {
		v = v*10 + int64(p.b[i]-'0')
		i++
	}
	digits := i - start
	if digits == 0 || digits > 18 || (digits > 1 && p.b[start] == '0') {
		return false
	}
	if i < len(p.b) && (p.b[i] == '.' || p.b[i] == 'e' || p.b[i] == 'E') {
		return false
	}
	if neg {
		v = -v
	}
	set(v)
	p.b = p.b[i:]
	return true
}

// str returns the contents of a JSON string without escapes or control
// characters (either means the line is not canonical).
func (p *canonParser) str() ([]byte, bool) {
	if len(p.b) == 0 || p.b[0] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(p.b[1:], '"')
	if end < 0 {
		return nil, false
	}
	s := p.b[1 : 1+end]
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return nil, false
		}
	}
	p.b = p.b[2+end:]
	return s, true
}
