package tarsplit

import (
	"hash/crc64"
	"math/rand"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"
)

// UpdateCRC64 equals the table implementation for every length, start
// alignment and state, and composes across calls.
func TestUpdateCRC64(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	data := make([]byte, 5000)
	rng.Read(data)
	lengths := []int{1023, 1024, 1025, 4096 + 77}
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		for _, off := range []int{0, 1, 7, 8, 15} {
			p := data[off : off+n]
			for _, crc := range []uint64{0, ^uint64(0), rng.Uint64()} {
				if got, want := UpdateCRC64(crc, p), crc64.Update(crc, storage.CRCTable, p); got != want {
					t.Fatalf("len %d off %d crc %x: %x, want %x", n, off, crc, got, want)
				}
			}
		}
	}
	want := crc64.Update(0, storage.CRCTable, data)
	var got uint64
	for p := data; len(p) > 0; {
		k := min(len(p), rng.Intn(700))
		got, p = UpdateCRC64(got, p[:k]), p[k:]
	}
	if got != want {
		t.Fatalf("in pieces: %x, want %x", got, want)
	}
	if h := crc64.New(storage.CRCTable); true {
		h.Write(data)
		if h.Sum64() != UpdateCRC64(0, data) {
			t.Fatal("differs from the hash.Hash64 the tar-split library uses")
		}
	}
}

func BenchmarkUpdateCRC64(b *testing.B) {
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	b.Run("clmul", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			UpdateCRC64(0, data)
		}
	})
	b.Run("table", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			crc64.Update(0, storage.CRCTable, data)
		}
	})
}
