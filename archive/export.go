package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/internal/idmap"
)

// ExportChanges writes an uncompressed tar of changes (read from dir) to w:
// deletions as .wh. entries (uid/gid 0, mode 0, current time), dirs with
// trailing "/", names relative without "./", hard links as TypeLink to the
// first name seen, security.capability, security.ima and user.* (except
// user.overlay.*) xattrs as PAX records, owners mapped back to container
// IDs. Sockets are skipped. ctx is checked between entries.
func ExportChanges(ctx context.Context, w io.Writer, dir string, changes []Change, opts ExportOptions) error {
	sorted := slices.Clone(changes)
	slices.SortStableFunc(sorted, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	ex := NewExporter(tw, opts)
	for _, c := range sorted {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel := strings.TrimPrefix(path.Clean("/"+c.Path), "/")
		if rel == "" {
			continue
		}
		if c.Kind == ChangeDelete {
			now := time.Now()
			hdr := &tar.Header{
				Typeflag:   tar.TypeReg,
				Name:       path.Join(path.Dir(rel), whiteoutPrefix+path.Base(rel)),
				ModTime:    now,
				AccessTime: now,
				ChangeTime: now,
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("writing whiteout for %s: %w", c.Path, err)
			}
			continue
		}
		if _, err := ex.Add(filepath.Join(dir, rel), rel); err != nil {
			return fmt.Errorf("adding %s: %w", c.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// Exporter writes files of a tree into a diff tar as ExportChanges does
// (type bits in the mode, dirs with "/", device numbers, exported xattrs as
// PAX records, hard links to the first name seen, owners mapped back to
// container IDs); drivers with a native diff use it for their entries.
type Exporter struct {
	tw   *tar.Writer
	opts ExportOptions
	seen map[uint64]string // inode -> first name written, for hard links
	buf  []byte
}

// NewExporter returns an Exporter writing to tw.
func NewExporter(tw *tar.Writer, opts ExportOptions) *Exporter {
	return &Exporter{tw: tw, opts: opts, seen: map[uint64]string{}, buf: make([]byte, 1<<20)}
}

// Add writes the file at p as the entry rel and returns the header it
// wrote; a socket is skipped (nil header, nil error).
func (ex *Exporter) Add(p, rel string) (*tar.Header, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&os.ModeSocket != 0 {
		return nil, nil
	}
	var link string
	if fi.Mode()&os.ModeSymlink != 0 {
		if link, err = os.Readlink(p); err != nil {
			return nil, err
		}
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("no stat data for %s", p)
	}
	hdr.Mode |= int64(st.Mode & syscall.S_IFMT) // type bits in mode, as upstream writes
	hdr.Name = rel
	if fi.IsDir() {
		hdr.Name += "/"
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		hdr.Devmajor = int64(unix.Major(uint64(st.Rdev)))
		hdr.Devminor = int64(unix.Minor(uint64(st.Rdev)))
	}
	for _, name := range exportXattrNames(p) {
		v, err := lgetxattr(p, name)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(v)
	}
	if !fi.IsDir() && st.Nlink > 1 {
		if first, ok := ex.seen[uint64(st.Ino)]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			hdr.Size = 0
		} else {
			ex.seen[uint64(st.Ino)] = hdr.Name
		}
	}
	if !strings.HasPrefix(path.Base(rel), whiteoutPrefix) {
		if hdr.Uid, err = idmap.ToContainer(int(st.Uid), ex.opts.UIDMap); err != nil {
			return nil, err
		}
		if hdr.Gid, err = idmap.ToContainer(int(st.Gid), ex.opts.GIDMap); err != nil {
			return nil, err
		}
	}
	if hdr.Format == tar.FormatUnknown {
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
	}
	if err := ex.tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		n, err := io.CopyBuffer(ex.tw, io.LimitReader(f, hdr.Size), ex.buf)
		if err != nil {
			return nil, err
		}
		if n != hdr.Size {
			return nil, fmt.Errorf("file shrank while archiving: %d of %d bytes", n, hdr.Size)
		}
	}
	return hdr, nil
}

// exportXattrNames lists the xattrs a diff carries.
func exportXattrNames(p string) []string {
	out := []string{"security.capability", "security.ima"}
	names, _ := llistxattr(p)
	for _, n := range names {
		if strings.HasPrefix(n, "user.") && !strings.HasPrefix(n, "user.overlay.") {
			out = append(out, n)
		}
	}
	return out
}
