package archive

import (
	"hash/crc64"
	"math/rand"
	"testing"

	"github.com/vbatts/tar-split/tar/storage"
)

func TestCRC64ISOMatchesHashCRC64(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 5*4*crcBlock+77)
	rng.Read(buf)
	for n := 0; n <= len(buf); n += 1 + n/5 {
		for _, seed := range []uint64{0, 0x123456789abcdef, ^uint64(0)} {
			want := crc64.Update(seed, isoTable, buf[:n])
			if got := crc64ISOUpdate(seed, buf[:n]); got != want {
				t.Fatalf("len %d seed %x: got %016x, want %016x", n, seed, got, want)
			}
		}
	}
	// Chunked writes equal one write, whatever the split.
	c := &crc64ISO{}
	for p := buf; len(p) > 0; {
		k := min(len(p), 1+rng.Intn(3*4*crcBlock))
		c.Write(p[:k])
		p = p[k:]
	}
	if want := crc64.Checksum(buf, isoTable); c.Sum64() != want {
		t.Fatalf("chunked: got %016x, want %016x", c.Sum64(), want)
	}
}

func TestPayloadCRCIsFastForTarSplitTable(t *testing.T) {
	if _, ok := newPayloadCRC().(*crc64ISO); !ok {
		t.Fatalf("tar-split's CRC table is not CRC-64/ISO any more: the recorder fell back to hash/crc64")
	}
	if *storage.CRCTable != *crc64.MakeTable(crc64.ISO) {
		t.Fatal("tar-split's CRC table changed")
	}
}

func BenchmarkCRC64ISO(b *testing.B) {
	buf := make([]byte, 1<<20)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		var c uint64
		for b.Loop() {
			c = crc64ISOUpdate(c, buf)
		}
	})
	b.Run("hash-crc64", func(b *testing.B) {
		b.SetBytes(int64(len(buf)))
		var c uint64
		for b.Loop() {
			c = crc64.Update(c, isoTable, buf)
		}
	})
}
