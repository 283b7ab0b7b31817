package archive

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"
)

func TestEntryJSONMatchesTarSplitPacker(t *testing.T) {
	type ent struct {
		typ     storage.Type
		name    string
		size    int64
		payload []byte
	}
	crc := binary.BigEndian.AppendUint64(nil, 0xfedcba9876543210)
	ents := []ent{
		{storage.SegmentType, "", 0, bytes.Repeat([]byte{0, 'a', 0xff}, 171)},
		{storage.FileType, "usr/bin/plain", 12345, crc},
		{storage.FileType, "empty", 0, nil},
		{storage.FileType, "./dir/", 0, nil},
		{storage.FileType, `q"uote\back`, 1, crc},
		{storage.FileType, "html<&>", 1, crc},
		{storage.FileType, "ctl\x01\t\n", 1, crc},
		{storage.FileType, "ünïcode\u2028sep", 1, crc},
		{storage.FileType, "bad\xffutf8", 7, crc},
		{storage.SegmentType, "", 0, []byte{}},
		{storage.FileType, "big", 1 << 40, crc},
	}
	var want bytes.Buffer
	p := storage.NewJSONPacker(&want)
	var got []byte
	for i, e := range ents {
		se := storage.Entry{Type: e.typ, Size: e.size, Payload: e.payload}
		se.SetName(e.name)
		if _, err := p.AddEntry(se); err != nil {
			t.Fatal(err)
		}
		got = appendEntryJSON(got, e.typ, e.name, e.size, e.payload, i)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("JSON differs from tar-split's packer:\n got %s\nwant %s", got, want.Bytes())
	}
}
