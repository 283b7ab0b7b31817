package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/tarsplit"
)

func corpus(t testing.TB) map[string][]byte {
	long := strings.Repeat("d", 120) + "/" + strings.Repeat("f", 150)
	big := strings.Repeat("0123456789abcdef", 70000) + "xyz"
	base := []tarEntry{
		dir("etc/", 0o755),
		file("etc/hosts", "127.0.0.1 localhost\n", 0o644),
		file("etc/empty", "", 0o600),
		file("etc/block", strings.Repeat("x", 512), 0o644),
		file("etc/block1", strings.Repeat("y", 513), 0o644),
		file("bin/suid", "#!/bin/sh\n", 0o4755),
		symlink("bin/sh", "/bin/busybox"),
		symlink("bin/rel", "../etc/hosts"),
		hardlink("etc/hosts2", "etc/hosts"),
		file("big", big, 0o644),
	}
	xattrFile := file("xa", "x", 0o644)
	xattrFile.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.test": "hello"}
	owned := file("owned", "o", 0o640)
	owned.hdr.Uid, owned.hdr.Gid = 1000, 1001
	withDirs := append([]tarEntry{dir("./", 0o755)}, base...)

	out := map[string][]byte{
		"ustar":   makeTar(t, tar.FormatUnknown, 0, withDirs...),
		"pax":     makeTar(t, tar.FormatPAX, 0, append(base, file(long, "long", 0o644), xattrFile, owned)...),
		"gnu":     makeTar(t, tar.FormatGNU, 0, append(base, file(long, "long", 0o644), owned)...),
		"padded":  makeTar(t, tar.FormatUnknown, 10240-1024-512*2, file("a", "a", 0o644)),
		"empty":   makeTar(t, tar.FormatUnknown, 0),
		"zerolen": {},
	}
	nonUTF := makeTar(t, tar.FormatUSTAR, 0, file("placeholder", "bytes", 0o644))
	patchName(nonUTF, 0, []byte("caf\xe9-\xff"))
	out["nonutf8"] = nonUTF
	return out
}

func unpackTarSplit(t *testing.T, blob []byte, opts archive.UnpackOptions) (string, []byte, archive.UnpackResult) {
	t.Helper()
	dest := t.TempDir()
	var ts bytes.Buffer
	opts.TarSplit = &ts
	res, err := archive.Unpack(context.Background(), dest, bytes.NewReader(blob), opts)
	if err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	return dest, ts.Bytes(), res
}

func TestRoundTrip(t *testing.T) {
	for name, data := range corpus(t) {
		for _, comp := range []string{"plain", "gzip", "zstd", "bzip2", "xz"} {
			t.Run(name+"/"+comp, func(t *testing.T) {
				blob := compressWith(t, comp, data)
				dest, ts, res := unpackTarSplit(t, blob, archive.UnpackOptions{})
				if want := digest.FromBytes(data); res.UncompressedDigest != want {
					t.Errorf("uncompressed digest %s, want %s", res.UncompressedDigest, want)
				}
				if res.UncompressedSize != int64(len(data)) {
					t.Errorf("uncompressed size %d, want %d", res.UncompressedSize, len(data))
				}
				if want := digest.FromBytes(blob); res.CompressedDigest != want {
					t.Errorf("compressed digest %s, want %s", res.CompressedDigest, want)
				}
				if res.CompressedSize != int64(len(blob)) {
					t.Errorf("compressed size %d, want %d", res.CompressedSize, len(blob))
				}
				wantComp := map[string]archive.Compression{"plain": archive.Uncompressed, "gzip": archive.Gzip, "zstd": archive.Zstd, "bzip2": archive.Bzip2, "xz": archive.Xz}[comp]
				if len(blob) == 0 {
					wantComp = archive.Uncompressed
				}
				if res.Compression != wantComp {
					t.Errorf("compression %v, want %v", res.Compression, wantComp)
				}
				var out bytes.Buffer
				if err := tarsplit.Reassemble(context.Background(), &out, bytes.NewReader(ts), tarsplit.DirOpener(dest)); err != nil {
					t.Fatalf("Reassemble: %v", err)
				}
				if !bytes.Equal(out.Bytes(), data) {
					t.Fatalf("reassembled %d bytes (sha %x), original %d (sha %x)", out.Len(), sha256.Sum256(out.Bytes()), len(data), sha256.Sum256(data))
				}
			})
		}
	}
}

func TestReassembleDetectsModifiedFile(t *testing.T) {
	data := makeTar(t, tar.FormatUnknown, 0, file("a", "hello", 0o644), file("b", "world", 0o644))
	for _, mod := range []string{"same-size", "longer", "shorter"} {
		t.Run(mod, func(t *testing.T) {
			dest, ts, _ := unpackTarSplit(t, data, archive.UnpackOptions{})
			content := map[string]string{"same-size": "HELLO", "longer": "hello!", "shorter": "hell"}[mod]
			if err := os.WriteFile(filepath.Join(dest, "a"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			err := tarsplit.Reassemble(context.Background(), &bytes.Buffer{}, bytes.NewReader(ts), tarsplit.DirOpener(dest))
			if !errors.Is(err, tarsplit.ErrFileIntegrity) || !strings.Contains(err.Error(), "file integrity checksum failed for a") {
				t.Fatalf("err = %v, want file integrity failure for a", err)
			}
		})
	}
}

func TestUnpackWithoutTarSplitAndTrustedDigests(t *testing.T) {
	data := makeTar(t, tar.FormatUnknown, 0, file("a", "hello", 0o644))
	blob := compressWith(t, "gzip", data)
	cd := digest.Digest("sha256:" + strings.Repeat("a", 64))
	ud := digest.Digest("sha256:" + strings.Repeat("b", 64))
	res, err := archive.Unpack(context.Background(), t.TempDir(), bytes.NewReader(blob), archive.UnpackOptions{CompressedDigest: cd, UncompressedDigest: ud})
	if err != nil {
		t.Fatal(err)
	}
	if res.CompressedDigest != cd || res.UncompressedDigest != ud {
		t.Fatalf("trusted digests not used: %+v", res)
	}
	if res.CompressedSize != int64(len(blob)) || res.UncompressedSize != int64(len(data)) {
		t.Fatalf("sizes %d/%d, want %d/%d", res.CompressedSize, res.UncompressedSize, len(blob), len(data))
	}
}

func TestUnpackIDSetsAndSize(t *testing.T) {
	a := file("a", "12345", 0o644)
	a.hdr.Uid, a.hdr.Gid = 7, 9
	b := file("b", "67", 0o644)
	b.hdr.Uid, b.hdr.Gid = 3, 9
	wh := file(".wh.gone", "", 0o644)
	wh.hdr.Uid, wh.hdr.Gid = 99, 99
	l := hardlink("c", "a")
	l.hdr.Uid, l.hdr.Gid = 7, 9
	data := makeTar(t, tar.FormatUnknown, 0, a, b, wh, l)
	res, err := archive.Unpack(context.Background(), t.TempDir(), bytes.NewReader(data), archive.UnpackOptions{IgnoreChownErrors: os.Geteuid() != 0})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.UIDs; len(got) != 2 || got[0] != 3 || got[1] != 7 {
		t.Errorf("UIDs %v, want [3 7]", got)
	}
	if got := res.GIDs; len(got) != 1 || got[0] != 9 {
		t.Errorf("GIDs %v, want [9]", got)
	}
	if res.Size != 7 {
		t.Errorf("Size %d, want 7", res.Size)
	}
}
