package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// cmdGenTars writes the storm's layer tarballs into DIR (a mix of many small
// files and a few MiB-sized ones, some gzip'd) and DIR/digests: one line
// "FILE sha256:HEX" per tarball, HEX the digest of the uncompressed tar,
// i.e. the diff-digest the store must record.
func cmdGenTars(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: gentars DIR")
	}
	dir := args[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var idx bytes.Buffer
	for i := 0; i < 10; i++ {
		r := rand.New(rand.NewSource(int64(i) + 1))
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		mt := time.Unix(1700000000, 0)
		nfiles := 20 + r.Intn(200)
		big := 0
		if i%3 == 2 {
			big = 1<<20 + r.Intn(2<<20)
		}
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d/", i), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt})
		for f := 0; f < nfiles; f++ {
			size := r.Intn(8192)
			if f == 0 && big > 0 {
				size = big
			}
			data := make([]byte, size)
			r.Read(data)
			name := fmt.Sprintf("layer%d/d%d/f%d", i, f%7, f)
			if f < 7 {
				tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d/d%d/", i, f%7), Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt})
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: mt, Uid: f % 3, Gid: f % 2}); err != nil {
				return err
			}
			tw.Write(data)
		}
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d/link", i), Typeflag: tar.TypeSymlink, Linkname: "d0/f0", ModTime: mt})
		if err := tw.Close(); err != nil {
			return err
		}
		sum := sha256.Sum256(buf.Bytes())
		name := fmt.Sprintf("t%02d.tar", i)
		out := buf.Bytes()
		if i%3 == 1 {
			name += ".gz"
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(out)
			zw.Close()
			out = gz.Bytes()
		}
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(&idx, "%s sha256:%x\n", name, sum)
	}
	return os.WriteFile(filepath.Join(dir, "digests"), idx.Bytes(), 0o644)
}

// readDigests parses DIR/digests into file path -> diff digest.
func readDigests(dir string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(dir, "digests"))
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			m[filepath.Join(dir, f[0])] = f[1]
		}
	}
	return m, nil
}

// rawHeader builds one 512-byte ustar header block by hand, so that the
// corpus can hold what archive/tar's writer refuses to produce.
func rawHeader(name string, typ byte, size int64, linkname string) []byte {
	h := make([]byte, 512)
	copy(h[0:100], name)
	copy(h[100:108], "0000644\x00")
	copy(h[108:116], "0000000\x00")
	copy(h[116:124], "0000000\x00")
	copy(h[124:136], fmt.Sprintf("%011o\x00", size))
	copy(h[136:148], fmt.Sprintf("%011o\x00", 1700000000))
	h[156] = typ
	copy(h[157:257], linkname)
	copy(h[257:265], "ustar\x0000")
	for i := 148; i < 156; i++ {
		h[i] = ' '
	}
	var sum int64
	for _, b := range h {
		sum += int64(b)
	}
	copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

func pad(n int64) []byte { return make([]byte, (512-n%512)%512) }

// paxRecord formats one "LEN key=value\n" record.
func paxRecord(k, v string) string {
	body := " " + k + "=" + v + "\n"
	n := len(body) + 1
	for len(strconv.Itoa(n))+len(body) != n {
		n++
	}
	return strconv.Itoa(n) + body
}

type hostileCase struct {
	name   string
	expect string // "reject": must fail; "any": may succeed, must stay confined
	data   func() ([]byte, error)
}

// entries builds a tar with archive/tar from (header, body) pairs.
func entries(items ...any) func() ([]byte, error) {
	return func() ([]byte, error) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for i := 0; i < len(items); i += 2 {
			h := items[i].(*tar.Header)
			body := items[i+1].(string)
			if h.Typeflag == tar.TypeReg {
				h.Size = int64(len(body))
			}
			if h.Mode == 0 {
				h.Mode = 0o644
			}
			h.ModTime = time.Unix(1700000000, 0)
			h.Format = tar.FormatPAX
			if err := tw.WriteHeader(h); err != nil {
				return nil, fmt.Errorf("%s: %w", h.Name, err)
			}
			io.WriteString(tw, body)
		}
		err := tw.Close()
		return buf.Bytes(), err
	}
}

func reg(name string) *tar.Header { return &tar.Header{Name: name, Typeflag: tar.TypeReg} }
func sym(name, target string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target}
}
func hard(name, target string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}
}
func dirh(name string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}
}

// cmdHostile writes the hostile corpus for a sandbox whose sentinel
// directory is SENT (a directory outside the store holding "victim"):
// DIR/<case>.tar and DIR/MANIFEST ("case expect" per line).
func cmdHostile(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: hostile DIR SENTINEL")
	}
	dir, s := args[0], args[1]
	up := strings.Repeat("../", 24)
	rel := up + strings.TrimPrefix(s, "/")
	xattrs := func(name string, kv ...string) *tar.Header {
		h := reg(name)
		h.PAXRecords = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			h.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
		}
		return h
	}
	dev := func(name string, typ byte, maj, min int64, uid int) *tar.Header {
		return &tar.Header{Name: name, Typeflag: typ, Devmajor: maj, Devminor: min, Mode: 0o666, Uid: uid, Gid: uid}
	}
	cases := []hostileCase{
		{"dotdot", "any", entries(reg(rel+"/victim"), "pwned", reg(up+"tmp/stowage-escape-dotdot"), "x")},
		{"absolute", "any", entries(reg(s+"/victim"), "pwned", reg("/stowage-escape-abs"), "x")},
		{"symlink-abs-write", "any", entries(sym("evil", s), "", reg("evil/victim"), "pwned", reg("evil/new"), "x")},
		{"symlink-rel-write", "any", entries(sym("evil", rel), "", reg("evil/victim"), "pwned", dirh("evil/newdir/"), "")},
		{"symlink-chain", "any", entries(dirh("d/"), "", sym("d/up", "../.."), "", sym("x", "d/up/"+rel), "", reg("x/victim"), "pwned")},
		{"symlink-then-symlink", "any", entries(sym("evil", s), "", sym("evil/victim", "/etc/passwd"), "")},
		{"hardlink-dotdot-write", "any", entries(hard("stolen", rel+"/victim"), "", reg("stolen"), "pwned")},
		{"hardlink-abs", "any", entries(hard("stolen", s+"/victim"), "")},
		{"hardlink-through-symlinked-dir", "any", entries(dirh("d/"), "", sym("d/s", s), "", hard("h", "d/s/victim"), "", reg("d/s/new"), "x")},
		{"replace-dir-with-symlink", "any", entries(dirh("d/"), "", reg("d/f"), "x", sym("d", s), "", reg("d/victim"), "pwned")},
		{"whiteout-through-symlink", "any", entries(sym("evil", s), "", reg("evil/.wh.victim"), "", reg("evil/.wh..wh..opq"), "")},
		{"symlink-loop", "any", entries(sym("a", "b"), "", sym("b", "a"), "", reg("a/f"), "x")},
		{"devices", "any", entries(dev("mem", tar.TypeChar, 1, 1, 0), "", dev("loop", tar.TypeBlock, 7, 0, 0), "", &tar.Header{Name: "fifo", Typeflag: tar.TypeFifo, Mode: 0o644}, "")},
		{"device-unmapped-owner", "any", entries(dev("null", tar.TypeChar, 1, 3, 4000000), "")},
		{"overlay-xattrs", "any", entries(dirh("d/"), "",
			xattrs("f", "trusted.overlay.redirect", "/etc", "trusted.overlay.metacopy", "", "trusted.overlay.opaque", "y", "user.overlay.redirect", "/etc", "user.overlay.opaque", "y"), "x",
			&tar.Header{Name: "d2/", Typeflag: tar.TypeDir, Mode: 0o755, PAXRecords: map[string]string{"SCHILY.xattr.trusted.overlay.opaque": "y", "SCHILY.xattr.user.overlay.opaque": "y", "SCHILY.xattr.trusted.overlay.origin": "zz"}}, "")},
		{"huge-pax-64m", "any", func() ([]byte, error) {
			rec := paxRecord("comment", strings.Repeat("A", 64<<20))
			var b bytes.Buffer
			b.Write(rawHeader("PaxHeaders/f", 'x', int64(len(rec)), ""))
			b.WriteString(rec)
			b.Write(pad(int64(len(rec))))
			b.Write(rawHeader("f", '0', 1, ""))
			b.Write(append([]byte("x"), pad(1)...))
			b.Write(make([]byte, 1024))
			return b.Bytes(), nil
		}},
		{"huge-pax-xattr-64m", "any", func() ([]byte, error) {
			rec := paxRecord("SCHILY.xattr.user.big", strings.Repeat("B", 64<<20))
			var b bytes.Buffer
			b.Write(rawHeader("PaxHeaders/f", 'x', int64(len(rec)), ""))
			b.WriteString(rec)
			b.Write(pad(int64(len(rec))))
			b.Write(rawHeader("f", '0', 1, ""))
			b.Write(append([]byte("x"), pad(1)...))
			b.Write(make([]byte, 1024))
			return b.Bytes(), nil
		}},
		{"huge-gnu-longname-64m", "any", func() ([]byte, error) {
			n := int64(64 << 20)
			var b bytes.Buffer
			b.Write(rawHeader("././@LongLink", 'L', n, ""))
			b.Write(bytes.Repeat([]byte("n"), int(n)))
			b.Write(rawHeader("f", '0', 0, ""))
			b.Write(make([]byte, 1024))
			return b.Bytes(), nil
		}},
		{"truncated-data", "reject", func() ([]byte, error) {
			data, err := entries(reg("a"), strings.Repeat("x", 5000))()
			return data[:512+1000], err
		}},
		{"truncated-header", "reject", func() ([]byte, error) {
			data, err := entries(reg("a"), "x", reg("b"), "y")()
			return data[:1024+100], err
		}},
		{"truncated-gzip", "reject", func() ([]byte, error) {
			data, err := entries(reg("a"), strings.Repeat("xyz", 20000))()
			var gz bytes.Buffer
			zw := gzip.NewWriter(&gz)
			zw.Write(data)
			zw.Close()
			return gz.Bytes()[:gz.Len()/2], err
		}},
		{"size-1tib-no-data", "reject", func() ([]byte, error) {
			var b bytes.Buffer
			b.Write(rawHeader("big", '0', 1<<40-512, ""))
			b.Write(make([]byte, 4096))
			return b.Bytes(), nil
		}},
		{"bad-checksum", "reject", func() ([]byte, error) {
			h := rawHeader("a", '0', 0, "")
			h[148] = '9'
			return append(h, make([]byte, 1024)...), nil
		}},
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mf, err := os.Create(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		return err
	}
	defer mf.Close()
	w := bufio.NewWriter(mf)
	for _, c := range cases {
		data, err := c.data()
		if err != nil && !strings.HasPrefix(c.name, "truncated") {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, c.name+".tar"), data, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(w, "%s %s\n", c.name, c.expect)
	}
	return w.Flush()
}

// cmdBomb writes a gzip stream (concatenated members, which gzip readers
// decode as one stream) that inflates to a tar holding one SIZE-byte file
// of zeros; the output is about SIZE/1000 bytes.
func cmdBomb(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: bomb SIZE_MIB")
	}
	mib, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return err
	}
	member := func(data []byte) []byte {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(data)
		zw.Close()
		return b.Bytes()
	}
	w := bufio.NewWriter(os.Stdout)
	w.Write(member(rawHeader("zeros", '0', mib<<20, "")))
	chunk := member(make([]byte, 1<<20))
	for i := int64(0); i < mib; i++ {
		if _, err := w.Write(chunk); err != nil {
			return err
		}
	}
	w.Write(member(make([]byte, 1024)))
	return w.Flush()
}
