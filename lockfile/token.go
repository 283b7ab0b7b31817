package lockfile

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"os"
	"sync/atomic"
	"time"
)

// TokenSize is the size of a last-writer token as written by RecordWrite.
const TokenSize = 64

// LastWrite is an opaque last-writer token; compare with ==.
type LastWrite struct{ token string }

// IsZero reports whether the token is the empty (never written) token.
func (l LastWrite) IsZero() bool { return l.token == "" }

// Bytes returns a copy of the raw token (0 to 64 bytes).
func (l LastWrite) Bytes() []byte { return []byte(l.token) }

// String returns the token in hex, for logs.
func (l LastWrite) String() string { return hex.EncodeToString([]byte(l.token)) }

// tokenCounter numbers the tokens this process writes, from 1.
var tokenCounter atomic.Uint64

// newToken builds a token unique across processes and time: u64 LE unix
// nanoseconds, u64 LE per-process counter, u32 LE pid, 44 random bytes.
func newToken() []byte {
	b := make([]byte, TokenSize)
	binary.LittleEndian.PutUint64(b[0:8], uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint64(b[8:16], tokenCounter.Add(1))
	binary.LittleEndian.PutUint32(b[16:20], uint32(os.Getpid()))
	_, _ = rand.Read(b[20:]) // never fails (crypto/rand aborts the process instead)
	return b
}
