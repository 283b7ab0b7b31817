package tarsplit

import (
	"hash/crc64"

	"github.com/vbatts/tar-split/tar/storage"
)

// UpdateCRC64 returns the CRC-64 tar-split records for a file payload
// (ISO polynomial, storage.CRCTable) of the data crc covers followed by p:
// crc64.Update(crc, storage.CRCTable, p), three to ten times faster on CPUs
// with carry-less multiplication (PCLMULQDQ), where 16-byte blocks are
// folded with two multiplications each and only the last block and the
// tail go through the table.
func UpdateCRC64(crc uint64, p []byte) uint64 {
	if !haveCLMUL || len(p) < 64 {
		return crc64.Update(crc, storage.CRCTable, p)
	}
	n := len(p) &^ 15
	lo, hi := foldCLMUL(^crc, p[:n])
	// The folded 128 bits carry the CRC of p[:n] (with the state
	// folded in); the table finishes from a zero state.
	var last [16]byte
	for i := 0; i < 8; i++ {
		last[i] = byte(lo >> (8 * i))
		last[8+i] = byte(hi >> (8 * i))
	}
	raw := ^crc64.Update(^uint64(0), storage.CRCTable, last[:])
	return crc64.Update(^raw, storage.CRCTable, p[n:])
}

// Folding constants for the reflected ISO polynomial: x^191 and x^127
// mod P, bit-reflected. foldCLMUL computes, for a 16*k byte p (k >= 2),
// X = p[0:16] ^ state, then X = lo(X)*k1 ^ hi(X)*k2 ^ p[16i:16i+16] for
// each further block.
var crcFoldConst = [2]uint64{0x6b70000000000001, 0xf500000000000001}

// crcFold4Const folds by 64 bytes (x^575 and x^511 mod P, reflected): the
// four-accumulator loop of foldCLMUL, from 128 bytes on.
var crcFold4Const = [2]uint64{0x01b001b1b0000001, 0xb100010100000001}
