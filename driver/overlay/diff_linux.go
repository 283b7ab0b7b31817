package overlay

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/staging"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// layerView is a layer's diff dir and its lowers' diff dirs (nearest
// first), for native diffs.
type layerView struct {
	diff   string
	lowers []string
	opaque string // the opaque xattr name
}

// nativeView returns the view of id when parent is its real parent and
// native diff is safe; ok false means: use the naive path.
func (d *Driver) nativeView(id, parent string) (v layerView, ok bool, err error) {
	dir, _, err := d.lookup(id)
	if err != nil {
		return layerView{}, false, err
	}
	if parent != "" {
		if _, _, err := d.lookup(parent); err != nil {
			return layerView{}, false, err
		}
	}
	ids, err := d.lowerIDs(id)
	if err != nil {
		return layerView{}, false, err
	}
	real := ""
	if len(ids) > 0 {
		real = ids[0]
	}
	if real != parent || d.naiveDiff {
		return layerView{}, false, nil
	}
	lowers, err := d.lowerDirs(id)
	if err != nil {
		return layerView{}, false, err
	}
	return layerView{diff: filepath.Join(dir, diffName), lowers: lowers, opaque: d.opaqueXattr()}, true, nil
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(p, xattr string) bool {
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, xattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// lowerStat returns the stat of rel as the lowers show it (nil if hidden
// or absent): nearest lower first; a whiteout or non-directory on the way
// hides it, an opaque directory on the way hides deeper lowers.
func (v layerView) lowerStat(rel string) *unix.Stat_t {
	comps := strings.Split(rel, "/")
	for _, l := range v.lowers {
		cur, opaque := l, false
		for i, c := range comps {
			cur = filepath.Join(cur, c)
			var st unix.Stat_t
			if err := unix.Lstat(cur, &st); err != nil {
				break
			}
			if isWhiteout(&st) {
				return nil
			}
			if i == len(comps)-1 {
				return &st
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return nil
			}
			if isOpaque(cur, v.opaque) {
				opaque = true
			}
		}
		if opaque {
			return nil
		}
	}
	return nil
}

// walk visits every entry of the diff dir in lexical order (root
// excluded) with its path relative to the diff.
func (v layerView) walk(ctx context.Context, fn func(rel, p string, st *unix.Stat_t) error) error {
	return filepath.WalkDir(v.diff, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == v.diff {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		rel, _ := filepath.Rel(v.diff, p)
		return fn(filepath.ToSlash(rel), p, &st)
	})
}

// nativeChanges lists the changes of a layer against its real parent from
// its diff dir alone (spec §5.4).
func (v layerView) nativeChanges(ctx context.Context) ([]archive.Change, error) {
	kinds := map[string]archive.ChangeKind{}
	var order []string
	add := func(p string, k archive.ChangeKind) {
		if _, ok := kinds[p]; !ok {
			order = append(order, p)
		}
		kinds[p] = k
	}
	var opaqueDirs []string
	under := func(rel string) bool {
		for _, o := range opaqueDirs {
			if strings.HasPrefix(rel, o+"/") {
				return true
			}
		}
		return false
	}
	err := v.walk(ctx, func(rel, p string, st *unix.Stat_t) error {
		abs := "/" + rel
		switch {
		case isWhiteout(st):
			add(abs, archive.ChangeDelete)
		case st.Mode&unix.S_IFMT == unix.S_IFDIR && isOpaque(p, v.opaque):
			if !under(rel) && v.lowerStat(rel) != nil {
				add(abs, archive.ChangeDelete)
			}
			opaqueDirs = append(opaqueDirs, rel)
			if _, ok := kinds[abs]; !ok {
				add(abs, archive.ChangeAdd)
			}
		default:
			var lst *unix.Stat_t
			if !under(rel) {
				lst = v.lowerStat(rel)
			}
			switch {
			case lst == nil:
				add(abs, archive.ChangeAdd)
			case st.Mode&unix.S_IFMT == unix.S_IFDIR && lst.Mode == st.Mode && lst.Uid == st.Uid &&
				lst.Gid == st.Gid && lst.Mtim == st.Mtim:
				// an unchanged directory (copied up for its children)
			default:
				add(abs, archive.ChangeModify)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Parents of changes are reported as modified once.
	for _, p := range slices.Clone(order) {
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if _, ok := kinds[dir]; !ok {
				add(dir, archive.ChangeModify)
			}
		}
	}
	slices.Sort(order)
	out := make([]archive.Change, 0, len(order))
	for _, p := range order {
		out = append(out, archive.Change{Path: p, Kind: kinds[p]})
	}
	return out, nil
}

// Changes lists the changes of id against parent: natively from the diff
// dir when parent is id's real parent, else by comparing both mounted
// trees.
func (d *Driver) Changes(ctx context.Context, id, parent string) ([]archive.Change, error) {
	v, native, err := d.nativeView(id, parent)
	if err != nil {
		return nil, err
	}
	if native {
		ch, err := v.nativeChanges(ctx)
		if err != nil {
			return nil, fmt.Errorf("overlay changes of %s: %w", id, err)
		}
		return ch, nil
	}
	var out []archive.Change
	err = d.withNaive(ctx, id, parent, func(layerDir, parentDir string) error {
		out, err = archive.ChangesDirs(ctx, layerDir, parentDir)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("overlay changes of %s: %w", id, err)
	}
	return out, nil
}

// DiffSize is, natively, the lstat size of the non-directory entries of
// the diff dir (hard links once); naively the size of the changed paths.
func (d *Driver) DiffSize(ctx context.Context, id, parent string) (int64, error) {
	v, native, err := d.nativeView(id, parent)
	if err != nil {
		return 0, err
	}
	if native {
		var size int64
		seen := map[uint64]bool{}
		err := v.walk(ctx, func(rel, p string, st *unix.Stat_t) error {
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				return nil
			}
			if st.Nlink > 1 {
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
			size += st.Size
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("overlay diff size of %s: %w", id, err)
		}
		return size, nil
	}
	var size int64
	err = d.withNaive(ctx, id, parent, func(layerDir, parentDir string) error {
		ch, err := archive.ChangesDirs(ctx, layerDir, parentDir)
		if err != nil {
			return err
		}
		size, err = archive.ChangesSize(layerDir, ch)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("overlay diff size of %s: %w", id, err)
	}
	return size, nil
}

// Diff writes an uncompressed tar of the changes of id against parent:
// natively (the diff dir with overlay whiteouts turned back into .wh.
// entries, spec §2.4) for the real parent, else the naive diff of the
// mounted trees.
func (d *Driver) Diff(ctx context.Context, w io.Writer, id, parent string, opts archive.ExportOptions) error {
	v, native, err := d.nativeView(id, parent)
	if err != nil {
		return err
	}
	if native {
		if err := v.nativeDiff(ctx, w, opts); err != nil {
			return fmt.Errorf("overlay diff of %s: %w", id, err)
		}
		return nil
	}
	err = d.withNaive(ctx, id, parent, func(layerDir, parentDir string) error {
		ch, err := archive.ChangesDirs(ctx, layerDir, parentDir)
		if err != nil {
			return err
		}
		return archive.ExportChanges(ctx, w, layerDir, ch, opts)
	})
	if err != nil {
		return fmt.Errorf("overlay diff of %s: %w", id, err)
	}
	return nil
}

// withNaive mounts id and parent read-only on private mountpoints in a
// temp dir and calls fn with their paths ("" for no parent).
func (d *Driver) withNaive(ctx context.Context, id, parent string, fn func(layerDir, parentDir string) error) error {
	tmp, err := staging.New(tempRoot(d.homes.Home))
	if err != nil {
		return err
	}
	defer tmp.Cleanup()
	layerDir, err := d.mountRO(tmp.Addition(), id)
	if err != nil {
		return err
	}
	defer unmount(layerDir)
	parentDir := ""
	if parent != "" {
		if parentDir, err = d.mountRO(tmp.Addition(), parent); err != nil {
			return err
		}
		defer unmount(parentDir)
	}
	return fn(layerDir, parentDir)
}

// mountRO mounts layer id read-only at target (created).
func (d *Driver) mountRO(target, id string) (string, error) {
	dir, _, err := d.lookup(id)
	if err != nil {
		return "", err
	}
	lowers, err := d.mountLowers(dir, id)
	if err != nil {
		return "", err
	}
	plan, err := planMount(planInput{
		Diff: filepath.Join(dir, diffName), Work: filepath.Join(dir, workName), Empty: filepath.Join(dir, emptyName),
		Lowers: lowers, CallerOptions: []string{"ro"}, Rootless: d.rootless,
	})
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(target, 0o700); err != nil {
		return "", err
	}
	if err := d.mount(plan, target); err != nil {
		return "", err
	}
	return target, nil
}

// nativeDiff writes the tar of the diff dir.
func (v layerView) nativeDiff(ctx context.Context, w io.Writer, opts archive.ExportOptions) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	ex := archive.NewExporter(tw, opts)
	err := v.walk(ctx, func(rel, p string, st *unix.Stat_t) error {
		if isWhiteout(st) {
			return tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     path.Join(path.Dir(rel), whiteoutPrefix+path.Base(rel)),
				Uid:      int(st.Uid), Gid: int(st.Gid),
				ModTime: time.Unix(st.Mtim.Unix()).Truncate(time.Second),
			})
		}
		hdr, err := ex.Add(p, rel)
		if err != nil {
			return fmt.Errorf("adding %s: %w", rel, err)
		}
		if hdr == nil { // a socket: not exported
			return nil
		}
		if hdr.Typeflag == tar.TypeDir && isOpaque(p, v.opaque) && v.lowerStat(rel) != nil {
			return tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg,
				Name:     path.Join(rel, opaqueMarker),
				Mode:     hdr.Mode & 0o7777,
				Uid:      hdr.Uid, Gid: hdr.Gid, Uname: hdr.Uname, Gname: hdr.Gname,
				ModTime: time.Unix(0, 0),
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// DiffDir returns layer id's diff directory (driver.DiffDirGetter). An
// ID-remapped copy (one with diff1, see reown) has its files spread over
// diff, diff1 and the layer it copies: it fails wrapping
// driver.ErrNotSupported, and OpenFile serves it.
func (d *Driver) DiffDir(id string) (string, error) {
	dir, _, err := d.lookup(id)
	if err != nil {
		return "", err
	}
	extra, err := ownExtraDiffs(dir)
	if err != nil {
		return "", err
	}
	if len(extra) > 0 {
		return "", fmt.Errorf("overlay layer %s is an ID-remapped copy: its files are not in one directory: %w", id, driver.ErrNotSupported)
	}
	return filepath.Join(dir, diffName), nil
}

// OpenFile opens the regular file at path inside layer id's diff dir
// (for an ID-remapped copy: diff, diff1..., then its lowers).
// Resolution is confined to each dir: ".." and symlinks cannot leave it.
func (d *Driver) OpenFile(id, name string) (io.ReadCloser, error) {
	dir, _, err := d.lookup(id)
	if err != nil {
		return nil, err
	}
	roots := []string{filepath.Join(dir, diffName)}
	extra, err := ownExtraDiffs(dir)
	if err != nil {
		return nil, err
	}
	if len(extra) > 0 {
		// An ID-remapped copy (reown): its files are in diff1 when their
		// owner changed, else still in the layer it copies.
		lowers, err := d.lowerDirs(id)
		if err != nil {
			return nil, err
		}
		roots = append(append(roots, extra...), lowers...)
	}
	var firstErr error
	for _, root := range roots {
		f, err := driver.OpenRegularInRoot(root, name, false)
		if err == nil {
			return f, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("overlay open %q in layer %s: %w", name, id, firstErr)
}
