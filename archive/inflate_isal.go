//go:build linux && cgo && isal

package archive

/*
#cgo LDFLAGS: -lisal
#include <stdint.h>
#include <stdlib.h>
#include <isa-l/igzip_lib.h>

// stw_inflate_new allocates and initialises a gzip inflate state (the
// header and the CRC-32/size trailer are checked by ISA-L).
static struct inflate_state *stw_inflate_new(void) {
	struct inflate_state *s = malloc(sizeof(*s));
	if (s == NULL)
		return NULL;
	isal_inflate_init(s);
	s->crc_flag = ISAL_GZIP;
	return s;
}

// stw_inflate_reset starts the next gzip member.
static void stw_inflate_reset(struct inflate_state *s) {
	isal_inflate_reset(s);
	s->crc_flag = ISAL_GZIP;
}

// stw_inflate runs one isal_inflate call on the caller's buffers and
// clears the state's pointers before returning, so the C state never
// keeps a pointer into Go memory (ISA-L keeps the history window it needs
// in the state itself).
static int stw_inflate(struct inflate_state *s, uint8_t *in, uint32_t in_len,
		uint8_t *out, uint32_t out_len, uint32_t *used, uint32_t *wrote,
		int *finished) {
	s->next_in = in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_len;
	int r = isal_inflate(s);
	*used = in_len - s->avail_in;
	*wrote = out_len - s->avail_out;
	*finished = s->block_state == ISAL_BLOCK_FINISH;
	s->next_in = NULL;
	s->avail_in = 0;
	s->next_out = NULL;
	s->avail_out = 0;
	return r;
}
*/
import "C"

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"runtime"
	"unsafe"
)

// isalAvailable: this build inflates gzip with ISA-L (build tag isal).
const isalAvailable = true

// isalInBuf is the input buffer of an isalReader: large enough that the
// cgo call overhead is noise, small enough to stay in L2.
const isalInBuf = 256 << 10

// isalReader decompresses a gzip stream (one or more members, as
// compress/gzip in multistream mode) with ISA-L's inflate, which takes
// about 40 % of the CPU time of Go's fastest (klauspost's) on these
// machines. Errors are compress/gzip's (gzip.ErrHeader, gzip.ErrChecksum)
// where it has one.
type isalReader struct {
	src     io.Reader
	st      *C.struct_inflate_state
	in      []byte
	pos     int   // next unread byte of in
	end     int   // end of the valid bytes of in
	srcErr  error // sticky error of src (io.EOF at its end)
	between bool  // a member ended; the next bytes start another or the end
	err     error // sticky error of the reader
}

func newISALReader(src io.Reader) (*isalReader, error) {
	st := C.stw_inflate_new()
	if st == nil {
		return nil, errors.New("gzip: cannot allocate the inflate state")
	}
	z := &isalReader{src: src, st: st, in: make([]byte, isalInBuf)}
	runtime.SetFinalizer(z, (*isalReader).free)
	// Like gzip.NewReader, read and check the first header now: a stream
	// that is not gzip fails here, not at the first Read.
	if err := z.nextMember(true); err != nil {
		z.free()
		return nil, err
	}
	return z, nil
}

// buffered makes sure at least n unread input bytes are buffered (n is at
// most len(z.in)); false when src ended or failed first.
func (z *isalReader) buffered(n int) bool {
	for z.end-z.pos < n {
		if z.srcErr != nil {
			return false
		}
		if z.pos == z.end {
			z.pos, z.end = 0, 0
		} else if len(z.in)-z.pos < n {
			z.end = copy(z.in, z.in[z.pos:z.end])
			z.pos = 0
		}
		m, err := z.src.Read(z.in[z.end:])
		z.end += m
		if err != nil {
			z.srcErr = err
		}
	}
	return true
}

// truncated is the error for input that ended inside a member.
func (z *isalReader) truncated() error {
	if z.srcErr == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return z.srcErr
}

// nextMember checks that the input (the stream's start, or what follows a
// member) begins with a gzip magic, as compress/gzip does: at the end of
// the stream it returns io.EOF (after the first member only).
func (z *isalReader) nextMember(first bool) error {
	if !z.buffered(1) {
		if z.srcErr == io.EOF && !first {
			return io.EOF
		}
		return z.truncated()
	}
	if !z.buffered(2) {
		return z.truncated()
	}
	if z.in[z.pos] != 0x1f || z.in[z.pos+1] != 0x8b {
		return gzip.ErrHeader
	}
	if !first {
		C.stw_inflate_reset(z.st)
	}
	z.between = false
	return nil
}

func (z *isalReader) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if len(p) > 1<<30 {
		p = p[:1<<30]
	}
	for {
		if z.between {
			if err := z.nextMember(false); err != nil {
				z.err = err
				return 0, err
			}
		}
		if !z.buffered(1) {
			z.err = z.truncated()
			return 0, z.err
		}
		var used, wrote C.uint32_t
		var finished C.int
		r := C.stw_inflate(z.st,
			(*C.uint8_t)(unsafe.Pointer(&z.in[z.pos])), C.uint32_t(z.end-z.pos),
			(*C.uint8_t)(unsafe.Pointer(&p[0])), C.uint32_t(len(p)),
			&used, &wrote, &finished)
		z.pos += int(used)
		if r < 0 {
			z.err = isalError(int(r))
			return int(wrote), z.err
		}
		z.between = finished != 0
		if wrote > 0 {
			return int(wrote), nil
		}
		if used == 0 && !z.between {
			// ISA-L made no progress on the input at hand: it needs
			// more, if there is more.
			if z.end-z.pos >= len(z.in) {
				z.err = errors.New("gzip: inflate made no progress")
				return 0, z.err
			}
			if !z.buffered(z.end - z.pos + 1) {
				z.err = z.truncated()
				return 0, z.err
			}
		}
	}
}

func isalError(r int) error {
	switch r {
	case C.ISAL_INCORRECT_CHECKSUM:
		return gzip.ErrChecksum
	case C.ISAL_INVALID_WRAPPER, C.ISAL_UNSUPPORTED_METHOD:
		return gzip.ErrHeader
	}
	return fmt.Errorf("gzip: corrupt deflate data (ISA-L error %d)", r)
}

// Close frees the C state; the reader fails afterwards.
func (z *isalReader) Close() error {
	z.free()
	if z.err == nil {
		z.err = errors.New("gzip: read after Close")
	}
	return nil
}

func (z *isalReader) free() {
	if z.st != nil {
		C.free(unsafe.Pointer(z.st))
		z.st = nil
		runtime.SetFinalizer(z, nil)
	}
}
