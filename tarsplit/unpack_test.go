package tarsplit

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"
)

// unpackAll returns the entries (as text) and the final error of an
// unpacker, for comparing ours with the library's.
func unpackAll(next func() (*storage.Entry, error)) []string {
	var out []string
	for i := 0; i < 10000; i++ {
		e, err := next()
		if err != nil {
			if err == io.EOF {
				return append(out, "EOF")
			}
			return append(out, "error")
		}
		out = append(out, fmt.Sprintf("%d %q %q %d %q %v %d", e.Type, e.Name, e.NameRaw, e.Size, e.Payload, e.Payload == nil, e.Position))
	}
	return append(out, "too many")
}

func sameAsLibrary(t *testing.T, js []byte) {
	t.Helper()
	lib := storage.NewJSONUnpacker(bytes.NewReader(js))
	want := unpackAll(lib.Next)
	ours := newUnpacker(bytes.NewReader(js))
	got := unpackAll(ours.Next)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("input %q:\nours    %q\nlibrary %q", js, got, want)
	}
}

// The fast unpacker gives the library's entries and errors, canonical
// lines or not.
func TestUnpackerMatchesLibrary(t *testing.T) {
	for _, js := range []string{
		"",
		"\n",
		`{"type":2,"payload":"YWJj","position":0}` + "\n" + `{"type":1,"name":"a","size":1,"payload":"AAAAAAAAAAA=","position":1}` + "\n",
		`{"type":2,"payload":"YWJj","position":0}`, // no final newline
		`{"type":1,"name_raw":"/w==","size":-1,"payload":null,"position":0}` + "\n",
		`{"type":1,"name":"a","payload":null,"position":0}` + "\n" + `{"type":1,"name":"./a","payload":null,"position":1}` + "\n",
		`{"type":1,"name":"d\u00e9j\u00e0","payload":null,"position":0}` + "\n",
		`{"type":1,"name":"a\"b","payload":null,"position":0}` + "\n",
		`{"type":1,"name":"a\\b","payload":null,"position":0}` + "\n",
		`{"type":1,"name":"\u003cx\u003e","payload":null,"position":0}` + "\n",
		"{\"type\":1,\"name\":\"\xff\",\"payload\":null,\"position\":0}\n",
		"{\"type\":1,\"name\":\"a\tb\",\"payload\":null,\"position\":0}\n",
		"{\"type\":2,\"payload\":\"YW\rJj\",\"position\":0}\n",
		`{"type":2,"payload":"YWJ","position":0}` + "\n",
		`{"type":2,"payload":"","position":0}` + "\n",
		`{"type":2,"payload":"YWJj","position":0}{"type":2,"payload":"YWJj","position":1}` + "\n",
		`{"type":2,` + "\n" + `"payload":"YWJj","position":0}` + "\n",
		`{"position":3,"payload":"YWJj","type":2}` + "\n",
		`{"TYPE":2,"Payload":"YWJj","position":0}` + "\n",
		`{"type":2,"payload":"YWJj","position":0,"extra":[1,2]}` + "\n",
		`{"type":2.5,"payload":"YWJj","position":0}` + "\n" + `{"type":2,"payload":"YWJj","position":1}` + "\n",
		`{"type":1e1,"payload":"YWJj","position":0}` + "\n",
		`{"type":99999999999999999999,"payload":"YWJj","position":0}` + "\n",
		`{"type":-0,"payload":"YWJj","position":0}` + "\n",
		`{"type":01,"payload":"YWJj","position":0}` + "\n",
		`{"type":2,"payload":"YWJj","position":0}` + "\n\n\n  \n",
		`{"type":2,"payload":"YWJj","position":0}` + "\n garbage\n",
		`{"type":2,"payload":"YWJj","position":0} ` + "\n",
		`[1]` + "\n",
		`{"type":1,"name":"` + strings.Repeat("x", 200000) + `","size":3,"payload":null,"position":0}` + "\n" + `{"type":2,"payload":"YWJj","position":1}` + "\n",
	} {
		sameAsLibrary(t, []byte(js))
	}
}

// The compat fixtures (written by the reference) are read identically.
func TestUnpackerFixtures(t *testing.T) {
	for _, name := range []string{"layer", "nonutf8"} {
		gz, err := os.ReadFile("testdata/compat/" + name + ".tar-split.gz")
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		js, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		sameAsLibrary(t, js)
	}
}

func FuzzUnpacker(f *testing.F) {
	f.Add([]byte(`{"type":2,"payload":"YWJj","position":0}` + "\n" + `{"type":1,"name":"a","size":1,"payload":"AAAAAAAAAAA=","position":1}` + "\n"))
	f.Add([]byte(`{"type":1,"name_raw":"/w==","size":-1,"payload":null,"position":0}`))
	f.Add([]byte(`{"type":1,"name":"a","payload":null,"position":0}` + "\n" + `{"type":1,"name":"./a","payload":null,"position":1}`))
	f.Fuzz(func(t *testing.T, js []byte) { sameAsLibrary(t, js) })
}
