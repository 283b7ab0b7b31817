package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	"github.com/vbatts/tar-split/archive/tar"
	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/internal/idmap"
)

const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	whiteoutOpaqueDir  = ".wh..wh..opq"
	copyBufSize        = 1 << 20
	tsOutBuf           = 256 << 10 // write size of the gzip'd tar-split
)

// Unpack reads a possibly compressed layer blob and extracts it into the
// existing directory dest, in one streaming pass. On error dest may hold a
// partial tree: the caller owns removing it. A cancelled ctx is noticed
// between entries.
func Unpack(ctx context.Context, dest string, blob io.Reader, opts UnpackOptions) (res UnpackResult, err error) {
	if opts.CompressedDigest != "" && opts.CompressedDigest.Algorithm() != digest.SHA256 {
		return res, fmt.Errorf("compressed digest %q: only sha256 is supported", opts.CompressedDigest)
	}
	if opts.UncompressedDigest != "" && opts.UncompressedDigest.Algorithm() != digest.SHA256 {
		return res, fmt.Errorf("uncompressed digest %q: only sha256 is supported", opts.UncompressedDigest)
	}

	// Compressed side: read ahead, counting (and hashing unless trusted)
	// every input byte, in a goroutine.
	in := newPrefetcher(regularFileReader(blob), opts.CompressedDigest == "")
	defer in.stop()
	raw := in
	comp, err := peekCompression(raw)
	if err != nil {
		return res, fmt.Errorf("reading layer: %w", err)
	}
	res.Compression = comp
	dec, err := decompressor(raw, comp)
	if err != nil {
		return res, err
	}
	defer dec.Close()

	// Uncompressed side: a compressed layer is decompressed, counted and
	// (unless trusted) hashed in goroutines of its own, so that inflating
	// and hashing overlap with extraction.
	var stream io.Reader
	var decoded *prefetcher
	if comp == Uncompressed {
		// The tar reader reads the prefetched input itself (no buffer
		// copy in between); the stream is the input, so is its size.
		stream = raw
	} else {
		mode := hashAsync
		if opts.UncompressedDigest != "" {
			mode = hashNone
		}
		decoded = newPrefetcherN(dec, mode, decodeBufs)
		// Registered after dec.Close, so run before it: the goroutine
		// reading dec ends first.
		defer decoded.stop()
		stream = decoded
	}

	u, err := newUnpacker(dest, opts)
	if err != nil {
		return res, err
	}
	defer u.root.close()
	u.closer = newCloser()
	defer u.closer.stop()

	var gz *gzip.Writer
	var tsOut *bufio.Writer
	if opts.TarSplit != nil {
		// The recorder's goroutine encodes JSON and compresses it itself:
		// pgzip's block goroutines cost more (fresh 1 MiB blocks) than
		// they overlap on two cores.
		tsOut = bufio.NewWriterSize(opts.TarSplit, tsOutBuf)
		gz, err = gzip.NewWriterLevel(tsOut, gzip.BestSpeed)
		if err != nil {
			return res, err
		}
		u.rec = newTSRecorder(gz)
		defer u.rec.close()
	}

	if opts.FlushEarly {
		u.flusher, err = newEarlyFlusher(dest)
		if err != nil {
			return res, err
		}
		defer u.flusher.stop()
	}

	if comp == Uncompressed {
		u.src = raw
	} else {
		u.src = decoded
	}
	if err := u.run(ctx, stream); err != nil {
		return res, err
	}
	// Drain the end-of-archive blocks and any trailing padding so that the
	// size, digest and tar-split cover the whole stream.
	if err := u.drain(stream); err != nil {
		return res, fmt.Errorf("reading layer padding: %w", err)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return res, fmt.Errorf("reading layer: %w", err)
	}
	if err := u.closer.stop(); err != nil {
		return res, err
	}
	if err := u.finish(); err != nil {
		return res, err
	}
	if u.rec != nil {
		if err := u.rec.close(); err != nil {
			return res, err
		}
	}
	if u.flusher != nil {
		if err := u.flusher.stop(); err != nil {
			return res, err
		}
	}
	if gz != nil {
		err := gz.Close()
		if err == nil {
			err = tsOut.Flush()
		}
		if err != nil {
			return res, fmt.Errorf("writing tar-split: %w", err)
		}
	}

	var cDigest digest.Digest
	res.CompressedSize, cDigest = in.Sum()
	var uDigest digest.Digest
	if decoded != nil {
		res.UncompressedSize, uDigest = decoded.Sum()
	} else {
		res.UncompressedSize = res.CompressedSize
	}
	if opts.CompressedDigest == "" {
		res.CompressedDigest = cDigest
	} else {
		res.CompressedDigest = opts.CompressedDigest
	}
	switch {
	case opts.UncompressedDigest != "":
		res.UncompressedDigest = opts.UncompressedDigest
	case decoded != nil:
		res.UncompressedDigest = uDigest
	default:
		res.UncompressedDigest = res.CompressedDigest
	}
	res.UIDs = sortedIDs(u.uids)
	res.GIDs = sortedIDs(u.gids)
	res.Size = u.size
	res.RootSet = u.rootSet
	return res, nil
}

func sortedIDs(m map[uint32]struct{}) []uint32 {
	out := make([]uint32, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

type dirTime struct {
	rel          string
	atime, mtime time.Time
}

type unpacker struct {
	opts     UnpackOptions
	root     *root
	buf      []byte
	umask    uint32
	inUserNS bool
	euid     int
	egid     int

	src     *prefetcher         // the tar stream; payloads are borrowed from it
	closer  *closer             // times and close of written files
	rec     *tsRecorder         // nil without tar-split
	flusher *earlyFlusher       // nil without FlushEarly
	names   map[string]struct{} // cleaned names seen, for duplicate detection

	unpacked map[string]struct{} // rel paths created by this tar (opaque handling)
	dirTimes []dirTime
	aufsMeta bool // some .wh..wh.* metadata was extracted at the root
	uids     map[uint32]struct{}
	gids     map[uint32]struct{}
	size     int64
	rootSet  bool // a "./" entry was applied to the root
}

func newUnpacker(dest string, opts UnpackOptions) (*unpacker, error) {
	rt, err := openRoot(dest)
	if err != nil {
		return nil, err
	}
	u := &unpacker{
		opts:     opts,
		root:     rt,
		buf:      make([]byte, copyBufSize),
		umask:    currentUmask(),
		inUserNS: inUserNS(),
		euid:     os.Geteuid(),
		egid:     os.Getegid(),
		names:    map[string]struct{}{},
		unpacked: map[string]struct{}{},
		uids:     map[uint32]struct{}{},
		gids:     map[uint32]struct{}{},
	}
	rt.uid, rt.gid, err = idmap.RootPair(opts.UIDMap, opts.GIDMap)
	if err != nil {
		rt.close()
		return nil, fmt.Errorf("mapping root for implicit directories: %w", err)
	}
	rt.created = func(rel string) { u.unpacked[rel] = struct{}{} }
	return u, nil
}

// addSegment records raw tar bytes (headers, padding) for tar-split.
func (u *unpacker) addSegment(b []byte) {
	if u.rec != nil {
		u.rec.segment(b)
	}
}

// run extracts every entry of stream, checking ctx between entries.
func (u *unpacker) run(ctx context.Context, stream io.Reader) error {
	tr := tar.NewReader(stream)
	tr.RawAccounting = u.rec != nil
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			u.addSegment(tr.RawBytes())
			return nil
		}
		if errors.Is(err, tar.ErrFieldTooLong) {
			return fmt.Errorf("reading tar: %w: %w", ErrHeaderTooLarge, err)
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		u.addSegment(tr.RawBytes())
		if !strings.HasPrefix(path.Base(hdr.Name), whiteoutPrefix) {
			u.uids[uint32(hdr.Uid)] = struct{}{}
			u.gids[uint32(hdr.Gid)] = struct{}{}
		}
		if isSparse(hdr) {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, ErrSparse)
		}
		if u.rec != nil {
			key := filepath.Clean(hdr.Name)
			if _, dup := u.names[key]; dup {
				return fmt.Errorf("tar entry %q: %w", hdr.Name, ErrDuplicatePath)
			}
			u.names[key] = struct{}{}
		}
		err = u.entry(hdr, tr)
		u.root.flush()
		if err != nil {
			return err
		}
		// Consume what extraction did not (whiteout payloads, skipped
		// entries) so the checksum covers the whole payload.
		if err := u.readPayload(tr, -1); err != nil {
			return fmt.Errorf("reading tar entry %q: %w", hdr.Name, err)
		}
		if u.rec != nil {
			u.rec.file(hdr.Name, hdr.Size)
			u.rec.segment(tr.RawBytes())
		}
	}
}

// readPayload reads the rest of the current entry, feeding the CRC, and
// writes it to fd (or discards it when fd < 0). tr passes payload reads
// straight to u.src, which lends its buffer instead of filling u.buf.
func (u *unpacker) readPayload(tr io.Reader, fd int) error {
	if u.src != nil {
		u.src.borrow = true
		defer func() { u.src.borrow, u.src.last = false, nil }()
	}
	for {
		n, err := tr.Read(u.buf)
		if n > 0 {
			chunk := u.buf[:n]
			if u.src != nil {
				if len(u.src.last) != n {
					return fmt.Errorf("reading payload: %w: %d bytes read, %d lent", errBorrow, n, len(u.src.last))
				}
				chunk = u.src.last
				u.src.last = nil
			}
			if u.rec != nil {
				u.rec.data(chunk)
			}
			if fd >= 0 {
				if werr := writeAll(fd, chunk); werr != nil {
					return werr
				}
				if u.flusher != nil {
					u.flusher.wrote(n)
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// errBorrow means the tar reader did not read a payload from its source
// as readPayload relies on (a bug, never a property of the input).
var errBorrow = errors.New("internal error: payload read not lent by the stream")

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := rawWrite(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (u *unpacker) drain(stream io.Reader) error {
	for {
		n, err := stream.Read(u.buf)
		if n > 0 {
			u.addSegment(u.buf[:n])
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// finish applies directory times (after everything else, so later
// creations do not disturb them) and removes AUFS metadata dirs.
func (u *unpacker) finish() error {
	if u.aufsMeta {
		names, err := readDirNames(u.root.fd)
		if err != nil {
			return err
		}
		for _, n := range names {
			if strings.HasPrefix(n, whiteoutMetaPrefix) {
				if err := removeAllAt(u.root.fd, n); err != nil {
					return fmt.Errorf("removing AUFS metadata %s: %w", n, err)
				}
			}
		}
		u.root.invalidate()
	}
	for i := len(u.dirTimes) - 1; i >= 0; i-- {
		dt := u.dirTimes[i]
		pfd, err := u.root.parent(dt.rel, false)
		if err != nil {
			continue // removed by a later whiteout
		}
		if err := setTimesAt(pfd, path.Base(dt.rel), dt.atime, dt.mtime); err != nil && err != unix.ENOENT {
			return fmt.Errorf("setting times of %s: %w", dt.rel, err)
		}
	}
	u.root.flush()
	return nil
}

// currentUmask reads the umask without changing it (umask(2) would race
// with other goroutines creating files).
func currentUmask() uint32 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range bytes.Split(b, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("Umask:")); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(string(v)), 8, 32); err == nil {
					return uint32(m)
				}
			}
		}
	}
	return 0o022
}

// inUserNS reports whether we run in a user namespace other than the
// initial one (device nodes are then skipped, as upstream does).
func inUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}
