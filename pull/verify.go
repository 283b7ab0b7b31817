package pull

import (
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/source"
)

// verifier hashes and counts a blob stream. At EOF it checks the digest
// and, when known, the size, and returns an error wrapping
// source.ErrDigestMismatch instead of io.EOF when they differ, so the
// extraction reading it fails before anything is committed.
type verifier struct {
	r      io.Reader
	want   digest.Digest
	size   int64 // -1: unknown
	dg     digest.Digester
	n      int64
	err    error // sticky result once EOF was seen
	report func(n int64)
	last   int64 // n at the last report
}

func newVerifier(r io.Reader, want digest.Digest, size int64, report func(int64)) (*verifier, error) {
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("blob digest %q: %w", want, err)
	}
	return &verifier{r: r, want: want, size: size, dg: want.Algorithm().Digester(), report: report}, nil
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	if n > 0 {
		v.dg.Hash().Write(p[:n])
		v.n += int64(n)
		if v.size >= 0 && v.n > v.size {
			v.err = fmt.Errorf("blob %s: more than its %d bytes: %w", v.want, v.size, source.ErrDigestMismatch)
			return 0, v.err
		}
		if v.report != nil && v.n-v.last >= 64<<10 {
			v.last = v.n
			v.report(v.n)
		}
	}
	if errors.Is(err, io.EOF) {
		v.err = v.check()
		if v.report != nil {
			v.report(v.n)
		}
		if v.err == nil {
			v.err = io.EOF
		}
		return n, v.err
	}
	return n, err
}

func (v *verifier) check() error {
	if v.size >= 0 && v.n != v.size {
		return fmt.Errorf("blob %s: got %d bytes, want %d: %w", v.want, v.n, v.size, source.ErrDigestMismatch)
	}
	if got := v.dg.Digest(); got != v.want {
		return fmt.Errorf("blob %s: content has digest %s: %w", v.want, got, source.ErrDigestMismatch)
	}
	return nil
}

// finish reads what extraction left unread and returns the verdict.
func (v *verifier) finish() error {
	if v.err == nil {
		if _, err := io.Copy(io.Discard, v); err != nil {
			return err
		}
	}
	if errors.Is(v.err, io.EOF) {
		return nil
	}
	return v.err
}
