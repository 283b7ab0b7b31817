package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"
)

// tarFS is a read-only fs.FS over the regular files of an uncompressed
// tar file, read in place: one pass indexes the headers, then Open
// returns a section of the file. Symbolic and hard links to regular
// files inside the archive are followed.
type tarFS struct {
	f     *os.File
	files map[string]tarEntry
}

type tarEntry struct {
	offset, size int64
	link         string // target of a symlink or hard link ("" for a regular file)
}

// openTarFS indexes the tar file at name.
func openTarFS(name string) (*tarFS, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	t := &tarFS{f: f, files: map[string]tarEntry{}}
	if err := t.index(); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// countingReader tracks the offset tar.Reader has consumed; Seek lets
// tar.Reader skip file contents instead of reading them.
type countingReader struct {
	r io.ReadSeeker
	n int64
}

func (c *countingReader) Seek(off int64, whence int) (int64, error) {
	n, err := c.r.Seek(off, whence)
	if err == nil {
		c.n = n
	}
	return n, err
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (t *tarFS) index() error {
	cr := &countingReader{r: t.f}
	tr := tar.NewReader(cr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading archive: %w", err)
		}
		name := path.Clean("/" + hdr.Name)[1:]
		switch hdr.Typeflag {
		case tar.TypeReg:
			// tar.Reader has read the header (and any PAX/GNU records): the
			// content starts at the current offset.
			t.files[name] = tarEntry{offset: cr.n, size: hdr.Size}
		case tar.TypeSymlink:
			target := hdr.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir("/"+name), target)
			}
			t.files[name] = tarEntry{link: path.Clean(target)[1:]}
		case tar.TypeLink:
			t.files[name] = tarEntry{link: path.Clean("/" + hdr.Linkname)[1:]}
		}
	}
}

// lookup resolves links (at most 16 deep).
func (t *tarFS) lookup(name string) (tarEntry, bool) {
	for range 16 {
		e, ok := t.files[name]
		if !ok || e.link == "" {
			return e, ok
		}
		name = e.link
	}
	return tarEntry{}, false
}

// Open returns the regular file name (slash-separated, relative).
func (t *tarFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	e, ok := t.lookup(name)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &tarFile{SectionReader: io.NewSectionReader(t.f, e.offset, e.size), name: name}, nil
}

// Close closes the archive file.
func (t *tarFS) Close() error { return t.f.Close() }

// tarFile is one member of a tarFS.
type tarFile struct {
	*io.SectionReader
	name string
}

func (f *tarFile) Stat() (fs.FileInfo, error) { return tarInfo{f}, nil }
func (f *tarFile) Close() error               { return nil }

type tarInfo struct{ f *tarFile }

func (i tarInfo) Name() string       { return path.Base(i.f.name) }
func (i tarInfo) Size() int64        { return i.f.Size() }
func (i tarInfo) Mode() fs.FileMode  { return 0o444 }
func (i tarInfo) ModTime() time.Time { return time.Time{} }
func (i tarInfo) IsDir() bool        { return false }
func (i tarInfo) Sys() any           { return nil }
