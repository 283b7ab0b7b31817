package archive_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stowage/stowage/archive"
)

// sandbox makes base/{dest,sentinel} and returns both; sentinel holds one
// file that must survive, and nothing else may appear next to dest.
func sandbox(t *testing.T) (dest, sentinel string) {
	base := t.TempDir()
	dest = filepath.Join(base, "dest")
	sentinel = filepath.Join(base, "sentinel")
	os.Mkdir(dest, 0o755)
	os.Mkdir(sentinel, 0o755)
	os.WriteFile(filepath.Join(sentinel, "victim"), []byte("intact"), 0o644)
	return dest, sentinel
}

func checkSandbox(t *testing.T, dest, sentinel string) {
	t.Helper()
	base := filepath.Dir(dest)
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		if e.Name() != "dest" && e.Name() != "sentinel" {
			t.Errorf("something was written outside dest: %s", e.Name())
		}
	}
	ents, _ = os.ReadDir(sentinel)
	if len(ents) != 1 {
		t.Errorf("sentinel dir changed: %d entries", len(ents))
	}
	if b, err := os.ReadFile(filepath.Join(sentinel, "victim")); err != nil || string(b) != "intact" {
		t.Errorf("sentinel victim changed: %q %v", b, err)
	}
	if ents, err := os.ReadDir("/"); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "stowage-escape") {
				t.Errorf("escaped to /%s", e.Name())
			}
		}
	}
}

func TestHostileCorpus(t *testing.T) {
	cases := map[string]func(sentinel string) []tarEntry{
		"dotdot": func(s string) []tarEntry {
			return []tarEntry{file("../sentinel/victim", "pwned", 0o644), file("a/../../../stowage-escape-1", "x", 0o644)}
		},
		"absolute": func(s string) []tarEntry {
			return []tarEntry{file(filepath.Join(s, "victim"), "pwned", 0o644), file("/stowage-escape-2", "x", 0o644)}
		},
		"symlink-abs-then-write": func(s string) []tarEntry {
			return []tarEntry{symlink("evil", s), file("evil/victim", "pwned", 0o644), file("evil/new", "x", 0o644)}
		},
		"symlink-rel-then-write": func(s string) []tarEntry {
			return []tarEntry{symlink("evil", "../sentinel"), file("evil/victim", "pwned", 0o644)}
		},
		"symlink-chain": func(s string) []tarEntry {
			return []tarEntry{dir("d/", 0o755), symlink("d/up", "../.."), symlink("x", "d/up/sentinel"), file("x/victim", "pwned", 0o644)}
		},
		"symlink-dir-then-mkdir": func(s string) []tarEntry {
			return []tarEntry{symlink("evil", s), dir("evil/newdir/", 0o755), file("evil/newdir/f", "x", 0o644)}
		},
		"symlink-then-symlink": func(s string) []tarEntry {
			return []tarEntry{symlink("evil", s), symlink("evil/victim", "/etc/passwd")}
		},
		"symlink-then-hardlink-target": func(s string) []tarEntry {
			return []tarEntry{symlink("evil", s), hardlink("stolen", "evil/victim")}
		},
		"hardlink-dotdot": func(s string) []tarEntry {
			return []tarEntry{hardlink("stolen", "../sentinel/victim")}
		},
		"hardlink-abs": func(s string) []tarEntry {
			return []tarEntry{hardlink("stolen", filepath.Join(s, "victim"))}
		},
		"symlink-loop": func(s string) []tarEntry {
			return []tarEntry{symlink("a", "b"), symlink("b", "a"), file("a/f", "x", 0o644)}
		},
		"whiteout-through-symlink": func(s string) []tarEntry {
			return []tarEntry{symlink("evil", s), file("evil/.wh.victim", "", 0o644)}
		},
		"opaque-through-symlink": func(s string) []tarEntry {
			return []tarEntry{symlink("evil", s), file("evil/.wh..wh..opq", "", 0o644)}
		},
		"whiteout-dotdot": func(s string) []tarEntry {
			return []tarEntry{file("../sentinel/.wh.victim", "", 0o644), file(".wh...", "", 0o644)}
		},
		"replace-symlink-parent": func(s string) []tarEntry {
			return []tarEntry{dir("d/", 0o755), file("d/f", "x", 0o644), symlink("d", s), file("d/victim", "pwned", 0o644)}
		},
	}
	for name, mk := range cases {
		for _, mode := range []archive.WhiteoutFormat{archive.WhiteoutDelete, archive.WhiteoutOverlay} {
			t.Run(name, func(t *testing.T) {
				dest, sentinel := sandbox(t)
				data := makeTar(t, tar.FormatPAX, 0, mk(sentinel)...)
				err := unpack(t, dest, data, archive.UnpackOptions{IgnoreChownErrors: true, Whiteouts: mode, OpaqueXattr: "user.overlay.opaque"})
				t.Logf("result: %v", err)
				checkSandbox(t, dest, sentinel)
			})
		}
	}
}

func TestDotDotIsConfinedLikeChroot(t *testing.T) {
	dest, sentinel := sandbox(t)
	data := makeTar(t, tar.FormatUnknown, 0, file("../escape", "x", 0o644), file("/abs/file", "y", 0o644))
	if err := unpack(t, dest, data, archive.UnpackOptions{IgnoreChownErrors: true}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"escape": "x", "abs/file": "y"} {
		if b, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", p, b, err)
		}
	}
	checkSandbox(t, dest, sentinel)
}

// A PAX header or GNU long name over 1 MiB is refused with
// ErrHeaderTooLarge before anything is extracted, without reading the
// whole header into memory.
func TestHugeHeaderRefused(t *testing.T) {
	for _, format := range []tar.Format{tar.FormatPAX, tar.FormatGNU} {
		t.Run(format.String(), func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if format == tar.FormatPAX {
				// Go's writer refuses such a header: write the PAX
				// header as a regular file, then retype it.
				rec := "comment=" + strings.Repeat("x", 2<<20) + "\n"
				rec = strconv.Itoa(len(rec)+8) + " " + rec // 8 digits of length
				tw.WriteHeader(&tar.Header{Name: "PaxHeaders/big", Typeflag: tar.TypeReg, Size: int64(len(rec)), Format: tar.FormatUSTAR})
				tw.Write([]byte(rec))
				tw.Flush()
				patchHeader(buf.Bytes(), 0, func(h []byte) { h[156] = tar.TypeXHeader })
			}
			hdr := &tar.Header{Name: "big", Typeflag: tar.TypeReg, Size: 2, Mode: 0o644, Format: format}
			if format == tar.FormatPAX {
				hdr.Format = tar.FormatUSTAR
			} else {
				hdr.Name = strings.Repeat("d/", 1<<20) + "big"
			}
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatal(err)
			}
			tw.Write([]byte("hi"))
			tw.Close()
			dest, sentinel := sandbox(t)
			_, err := archive.Unpack(context.Background(), dest, &buf, archive.UnpackOptions{})
			if !errors.Is(err, archive.ErrHeaderTooLarge) {
				t.Fatalf("Unpack: got %v, want ErrHeaderTooLarge", err)
			}
			if !strings.Contains(err.Error(), "larger than 1 MiB") {
				t.Errorf("error %q does not say what is wrong", err)
			}
			if ents, _ := os.ReadDir(dest); len(ents) != 0 {
				t.Errorf("dest has %d entries after the refusal", len(ents))
			}
			checkSandbox(t, dest, sentinel)
		})
	}
}
