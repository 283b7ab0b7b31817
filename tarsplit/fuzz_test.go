package tarsplit_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stowage/stowage/tarsplit"
)

// FuzzReassemble feeds arbitrary (gzip'd) tar-split JSON to Reassemble: it
// must fail cleanly, never panic.
func FuzzReassemble(f *testing.F) {
	f.Add([]byte(`{"type":2,"payload":"YWJj","position":0}` + "\n" + `{"type":1,"name":"a","size":1,"payload":"AAAAAAAAAAA=","position":1}`))
	f.Add([]byte(`{"type":1,"name_raw":"/w==","size":-1,"position":0}`))
	f.Add([]byte(`{"type":7}`))
	f.Add([]byte(`{"type":1,"name":"a","position":0}` + "\n" + `{"type":1,"name":"./a","position":1}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(js)
		zw.Close()
		open := func(name string) (io.ReadCloser, error) {
			return io.NopCloser(strings.NewReader("x")), nil
		}
		_ = tarsplit.Reassemble(context.Background(), io.Discard, &gz, open)
		_ = tarsplit.Reassemble(context.Background(), io.Discard, bytes.NewReader(js), open)
	})
}
