// Command mkimage writes a small OCI image layout with no network and no
// container tools: one gzip'd layer per -layer directory (reproducible:
// sorted names, owner 0:0, mtime 0) and, for tests and benchmarks,
// -random-layers layers of seeded pseudo-random files.
//
//	go run ./examples/mkimage -o /tmp/hello-oci -ref latest -layer examples/rootfs -cmd /bin/hello
//
// The result pulls with `stowage pull oci:/tmp/hello-oci:latest NAME`.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var (
		out, ref, arch, cmd string
		layers              listFlag
		nRandom             int
		randomSize          int64
		seed                uint64
	)
	flag.StringVar(&out, "o", "", "output OCI layout directory (replaced)")
	flag.StringVar(&ref, "ref", "latest", "org.opencontainers.image.ref.name of the image")
	flag.StringVar(&arch, "arch", runtime.GOARCH, "architecture in the config")
	flag.StringVar(&cmd, "cmd", "", "the config's Cmd (space-separated)")
	flag.Var(&layers, "layer", "directory to pack as the next layer (repeatable)")
	flag.IntVar(&nRandom, "random-layers", 0, "add this many layers of pseudo-random files")
	flag.Int64Var(&randomSize, "random-size", 1<<20, "bytes of file content per random layer")
	flag.Uint64Var(&seed, "seed", 1, "seed of the random layers")
	flag.Parse()
	if out == "" {
		fmt.Fprintln(os.Stderr, "mkimage: -o is required")
		os.Exit(2)
	}
	if err := run(out, ref, arch, cmd, layers, nRandom, randomSize, seed); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(out, ref, arch, cmd string, dirs []string, nRandom int, randomSize int64, seed uint64) error {
	var tars [][]byte
	for _, d := range dirs {
		b, err := tarDir(d)
		if err != nil {
			return err
		}
		tars = append(tars, b)
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	for i := range nRandom {
		b, err := randomTar(rng, i, randomSize)
		if err != nil {
			return err
		}
		tars = append(tars, b)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for _, b := range tars {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(b)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if cmd != "" {
		cf.Config.Cmd = strings.Fields(cmd)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
}

// tarDir packs dir reproducibly.
func tarDir(dir string) ([]byte, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return nil, err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// randomTar makes layer i: files of up to 4 MiB under /data/<i>/ totalling
// size bytes, half random and half repeated text, so gzip has work to do.
func randomTar(rng *rand.Rand, i int, size int64) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := fmt.Sprintf("data/%d/", i)
	for _, d := range []string{"data/", dir} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return nil, err
		}
	}
	for n := 0; size > 0; n++ {
		fsize := min(size, 4<<20)
		size -= fsize
		content := make([]byte, fsize)
		for j := range content[:fsize/2] {
			content[j] = byte(rng.Uint32())
		}
		copy(content[fsize/2:], bytes.Repeat([]byte("stowage pull benchmark line\n"), int(fsize/28)+1))
		hdr := &tar.Header{Name: fmt.Sprintf("%sfile-%04d", dir, n), Typeflag: tar.TypeReg, Mode: 0o644, Size: fsize, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(content); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
