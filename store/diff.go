package store

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/internal/fsx"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/staging"
	"github.com/stowage/stowage/tarsplit"
)

// diffEnds resolves to (any layer store) and from (default: to's parent).
//
// Locking: layer stores held.
func (s *Store) diffEndsLocked(from, to string) (*layer.Layer, *layer.Store, string, error) {
	l, ls, ok := s.lookupLayerLocked(to)
	if !ok {
		return nil, nil, "", ErrLayerUnknown
	}
	if from == "" {
		return l, ls, l.Parent, nil
	}
	f, _, ok := s.lookupLayerLocked(from)
	if !ok {
		return nil, nil, "", ErrLayerUnknown
	}
	return l, ls, f.ID, nil
}

// Diff streams the changes of to against from (default: its parent) as a
// tar, compressed per opts (default: the layer's recorded compression).
// When from is the parent and a tar-split exists the original
// uncompressed tar is reassembled bit for bit; otherwise the driver
// generates one. The layer stores stay read-locked until the stream is
// closed; the caller must Close it.
func (s *Store) Diff(ctx context.Context, from, to string, opts DiffOptions) (io.ReadCloser, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return nil, err
	}
	write, err := s.diffWriterLocked(from, to, opts)
	if err != nil {
		unlock()
		return nil, err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	// Owned by the returned reader: Close waits for it.
	go func() {
		defer close(done)
		defer unlock()
		pw.CloseWithError(write(ctx, pw))
	}()
	return &diffReader{pr: pr, done: done}, nil
}

// DiffTo is Diff writing the stream to w itself: no pipe and no copy
// between goroutines, which is what the CLI uses. The layer stores stay
// read-locked until it returns; an error may come after part of the
// stream was written.
func (s *Store) DiffTo(ctx context.Context, w io.Writer, from, to string, opts DiffOptions) error {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return err
	}
	defer unlock()
	write, err := s.diffWriterLocked(from, to, opts)
	if err != nil {
		return err
	}
	return write(ctx, w)
}

// diffWriterLocked resolves the ends of a diff (see Diff) and returns the
// function writing its stream in the compression opts asks for.
//
// Locking: layers read-locked until write returns.
func (s *Store) diffWriterLocked(from, to string, opts DiffOptions) (write func(context.Context, io.Writer) error, err error) {
	l, ls, fromID, err := s.diffEndsLocked(from, to)
	if err != nil {
		return nil, err
	}
	comp := archive.Compression(l.CompressionType)
	if opts.Compression != nil {
		comp = *opts.Compression
	}
	snap := layer.Copy(l)
	return func(ctx context.Context, w io.Writer) error {
		return s.writeDiff(ctx, w, &snap, ls, fromID, comp)
	}, nil
}

type diffReader struct {
	pr   *io.PipeReader
	done chan struct{}
}

func (d *diffReader) Read(p []byte) (int, error) { return d.pr.Read(p) }

func (d *diffReader) Close() error {
	err := d.pr.Close()
	<-d.done
	return err
}

// writeDiff writes the (compressed) diff to w.
//
// Locking: layer stores held for reading (by the caller's goroutine).
func (s *Store) writeDiff(ctx context.Context, w io.Writer, l *layer.Layer, ls *layer.Store, fromID string, comp archive.Compression) error {
	cw, err := archive.CompressStream(w, comp)
	if err != nil {
		return err
	}
	err = s.writeUncompressedDiff(ctx, cw, l, ls, fromID)
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) writeUncompressedDiff(ctx context.Context, w io.Writer, l *layer.Layer, ls *layer.Store, fromID string) error {
	if fromID == l.Parent {
		f, err := os.Open(ls.TarSplitPath(l.ID))
		if err == nil {
			defer f.Close()
			open, done := s.layerFileOpener(l.ID)
			defer done()
			return tarsplit.Reassemble(ctx, w, f, open)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return s.graphDriver().Diff(ctx, w, l.ID, fromID, archive.ExportOptions{UIDMap: l.UIDMap, GIDMap: l.GIDMap})
}

// DiffSize returns the size of the changes of to against from (default: its parent).
func (s *Store) DiffSize(ctx context.Context, from, to string) (int64, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return -1, err
	}
	defer unlock()
	l, _, fromID, err := s.diffEndsLocked(from, to)
	if err != nil {
		return -1, err
	}
	return s.graphDriver().DiffSize(ctx, l.ID, fromID)
}

// Changes lists the changes of to against from (default: its parent).
func (s *Store) Changes(ctx context.Context, from, to string) ([]archive.Change, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	l, _, fromID, err := s.diffEndsLocked(from, to)
	if err != nil {
		return nil, err
	}
	return s.graphDriver().Changes(ctx, l.ID, fromID)
}

// ApplyDiff extracts diff into an existing layer of the primary store in
// place (the locked path: layers.lock is held for writing while the
// stream is read), writes its tar-split and records digests and sizes.
// It returns the bytes of file content written.
//
// The record is saved flagged ApplyingDiffFlag before the first file is
// written and without it once the digests are recorded, so that a crash
// or a failure in between (which leaves part of the diff in the layer)
// shows in Check as ErrLayerApplyUnfinished. Upstream flags nothing here;
// the "incomplete" flag is not used because the next open would delete
// the layer, which may be a container's or have children.
func (s *Store) ApplyDiff(ctx context.Context, nameOrID string, diff io.Reader) (int64, error) {
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeWrite})
	if err != nil {
		return -1, err
	}
	defer unlock()
	l, err := s.writableLayerLocked(nameOrID, ErrLayerUnknown)
	if err != nil {
		return -1, err
	}
	if l.Flags == nil {
		l.Flags = map[string]any{}
	}
	l.Flags[ApplyingDiffFlag] = true
	s.layers.Update(l)
	if err := s.layers.Save(ctx); err != nil {
		return -1, err
	}
	tmp, err := staging.New(filepath.Join(s.layers.Dir(), "tmp"))
	if err != nil {
		return -1, err
	}
	defer tmp.Cleanup()
	tsPath := tmp.Addition()
	f, err := os.OpenFile(tsPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return -1, err
	}
	res, err := s.graphDriver().ApplyDiff(ctx, l.ID, l.Parent, diff, driver.ApplyOptions{
		UIDMap: l.UIDMap, GIDMap: l.GIDMap,
		Unpack: archive.UnpackOptions{TarSplit: f},
	})
	if err == nil {
		err = fsx.SyncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return -1, err
	}
	if err := commitTarSplit(tsPath, s.layers.TarSplitPath(l.ID)); err != nil {
		return -1, err
	}
	applyResult(l, res, LayerOptions{})
	delete(l.Flags, ApplyingDiffFlag)
	s.layers.Update(l)
	if err := s.layers.Save(ctx); err != nil {
		return -1, err
	}
	return res.Size, nil
}

// ApplyingDiffFlag marks a layer whose ApplyDiff has not finished (see
// ApplyDiff).
const ApplyingDiffFlag = "stowage-applying-diff"

// layerFileOpener opens layer id's files for tar-split reassembly: through
// one tarsplit.LayerDir when the driver exposes its diff directory, else
// per file through the driver's OpenFile. done releases the descriptors.
func (s *Store) layerFileOpener(id string) (open tarsplit.Opener, done func()) {
	drv := s.graphDriver()
	perFile := func(name string) (io.ReadCloser, error) { return drv.OpenFile(id, name) }
	dg, ok := drv.(driver.DiffDirGetter)
	if !ok {
		return perFile, func() {}
	}
	dir, err := dg.DiffDir(id)
	if err != nil {
		return perFile, func() {}
	}
	ld, err := tarsplit.OpenLayerDir(dir)
	if err != nil {
		return perFile, func() {}
	}
	return ld.Open, func() { ld.Close() }
}
