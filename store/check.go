package store

// Consistency check (the `check` command). Check runs with the layer,
// image and container stores read-locked; Repair (repair.go) runs the
// same check and then its fixes with all of them write-locked, so nothing
// changes between what was found and what is removed.
//
// What is checked, in this order (see README "check, repair and gc"):
//
//  1. the metadata files decode (check_metadata.go; a file that does not
//     is reported on its own: nothing else can be checked reliably);
//  2. every layer of every store: big-data items present; no ApplyDiff
//     left unfinished (ApplyingDiffFlag); the diff
//     re-assembled from the tar-split matches the recorded uncompressed
//     digest and size; unless Quick, (read-write layers) the driver's
//     list of changes holds nothing the tar-split does not (an added file
//     is "+/path, layer content modified", a removed one "-/path, ...");
//     a parent that no store knows;
//  3. read-write layers whose ancestor is damaged; the others must be
//     mountable (driver.MountChecker);
//  4. every image: big-data items present with their recorded sizes, every
//     layer of its chains known (and their errors are the image's too);
//  5. every container: big data, image and layer known (their errors are
//     the container's too);
//  6. read-write layers nothing references, older than MaxUnreferencedAge;
//  7. driver layer directories no record accounts for; big-data
//     directories and tar-split files no record owns; temporary files
//     left by an interrupted atomic write.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/container"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/internal/table"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/tarsplit"
)

// Problems Check reports. The texts are containers/storage's where it has
// the same check (scripts and its check.bats match them).
var (
	ErrLayerUnaccounted            = errors.New("layer in lower level storage driver not accounted for")
	ErrLayerUnreferenced           = errors.New("layer not referenced by any images or containers")
	ErrLayerIncorrectContentDigest = errors.New("layer content incorrect digest")
	ErrLayerIncorrectContentSize   = errors.New("layer content incorrect size")
	ErrLayerContentModified        = errors.New("layer content modified")
	ErrLayerDataMissing            = errors.New("layer data item is missing")
	ErrLayerMissing                = errors.New("layer is missing")
	ErrLayerTarSplitMissing        = errors.New("layer tar-split data is missing")
	ErrLayerDirMissing             = errors.New("layer directory is missing from the lower level storage driver")
	ErrLayerParentDamaged          = errors.New("parent layer is damaged")
	ErrImageLayerMissing           = errors.New("image layer is missing")
	ErrImageDataMissing            = errors.New("image data item is missing")
	ErrImageDataIncorrectSize      = errors.New("image data item has incorrect size")
	ErrContainerImageMissing       = errors.New("image missing")
	ErrContainerLayerMissing       = errors.New("container layer is missing")
	ErrContainerDataMissing        = errors.New("container data item is missing")
	ErrContainerDataIncorrectSize  = errors.New("container data item has incorrect size")
	// ErrLayerApplyUnfinished is a layer whose ApplyDiff failed or was
	// interrupted: part of a diff may be in it.
	ErrLayerApplyUnfinished = errors.New("applying a diff to the layer did not finish")
	// ErrOrphanData is a big-data directory or tar-split file whose record is gone.
	ErrOrphanData = errors.New("not accounted for by any record")
	// ErrLeftoverTemp is a temporary file an interrupted atomic write left.
	ErrLeftoverTemp = errors.New("leftover temporary file")
)

// DefaultMaxUnreferencedAge is how old an unreferenced layer must be
// before Check reports it (the CLI's -m default).
const DefaultMaxUnreferencedAge = 24 * time.Hour

// CheckOptions select what Check does.
type CheckOptions struct {
	// Quick skips comparing each layer's files with its diff (the
	// "+/path, layer content modified" check); digests and sizes are
	// still verified, as upstream's quick check (CheckMost) does.
	Quick bool
	// metadataOnly skips re-reading layer contents altogether (gc).
	metadataOnly bool
	// MaxUnreferencedAge: a read-write layer that no image or container
	// uses is reported once it is older than this (0 reports all of them).
	MaxUnreferencedAge time.Duration
}

// CheckReport lists the problems found, per object ID. Every error text
// starts with what it is about ("layer ID: ...").
type CheckReport struct {
	Layers     map[string][]error // damaged read-write layers (and driver dirs, orphan data, by ID)
	ROLayers   map[string][]error // damaged layers of read-only stores
	Images     map[string][]error // damaged read-write images (with their layers' errors)
	ROImages   map[string][]error // damaged images of read-only stores
	Containers map[string][]error // damaged containers (with their image's and layer's errors)
	// Files are store files that are damaged themselves (metadata JSON
	// that does not decode, leftover temporary files), by path.
	Files map[string][]error `json:",omitempty"`

	parents     map[string]string // layer ID -> parent ID, every store
	rwLayers    map[string]bool   // IDs of the primary store's layers
	unaccounted []string          // driver dirs without a record, in driver order
	committing  map[string]bool   // layers a live process is committing: their files may have no record yet
	orphans     map[string]string // orphan big-data dir / tar-split path -> ID (layers, images, containers)
	temps       []string          // leftover temp files
	// roSetAside: a read-only store was set aside (its metadata does not
	// decode), so IDs no remaining store knows may be its: they are not
	// reported missing, and no layer is reported unreferenced.
	roSetAside bool
}

func newCheckReport() *CheckReport {
	return &CheckReport{
		Layers: map[string][]error{}, ROLayers: map[string][]error{},
		Images: map[string][]error{}, ROImages: map[string][]error{},
		Containers: map[string][]error{}, Files: map[string][]error{},
		parents: map[string]string{}, rwLayers: map[string]bool{}, orphans: map[string]string{},
	}
}

// Empty reports whether no problem was found.
func (r *CheckReport) Empty() bool {
	return len(r.Layers)+len(r.ROLayers)+len(r.Images)+len(r.ROImages)+len(r.Containers)+len(r.Files) == 0
}

func (r *CheckReport) addLayer(ro bool, id string, err error) {
	if ro {
		r.ROLayers[id] = append(r.ROLayers[id], err)
	} else {
		r.Layers[id] = append(r.Layers[id], err)
	}
}

func (r *CheckReport) addImage(ro bool, id string, errs ...error) {
	if len(errs) == 0 {
		return
	}
	if ro {
		r.ROImages[id] = append(r.ROImages[id], errs...)
	} else {
		r.Images[id] = append(r.Images[id], errs...)
	}
}

// layerErrs returns the errors recorded for a layer in either map.
func (r *CheckReport) layerErrs(id string) []error {
	return append(slices.Clone(r.Layers[id]), r.ROLayers[id]...)
}

// Check reports what is inconsistent in the store. It read-locks the
// layer, image and container stores for its whole run; it re-reads every
// layer that came from a diff, which takes about as long as exporting them
// all (Quick only skips comparing their files with their diffs).
func (s *Store) Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	r := newCheckReport()
	if ok, err := s.reportCorruptMetadata(ctx, r, describeCorrupt); !ok || err != nil {
		return r, err
	}
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeRead, containers: modeRead})
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.checkLocked(ctx, opts, r); err != nil {
		return nil, err
	}
	return r, nil
}

// checkLocked fills r.
//
// Locking: layers, images and containers held (R or W).
func (s *Store) checkLocked(ctx context.Context, opts CheckOptions, r *CheckReport) error {
	drv := s.graphDriver()
	for i, ls := range s.allLayerStores() {
		ro := i > 0
		desc := ""
		if ro {
			desc = "read-only "
		}
		for _, l := range ls.All() {
			if _, seen := r.parents[l.ID]; seen {
				continue
			}
			r.parents[l.ID] = l.Parent
			if !ro {
				r.rwLayers[l.ID] = true
			}
			for _, key := range l.BigDataNames {
				p, err := ls.BigDataPath(l.ID, key)
				if err == nil {
					_, err = os.Stat(p)
				}
				if errors.Is(err, os.ErrNotExist) {
					err = ErrLayerDataMissing
				}
				if err != nil {
					r.addLayer(ro, l.ID, fmt.Errorf("%slayer %s: data item %q: %w", desc, l.ID, key, err))
				}
			}
			if applying, _ := l.Flags[ApplyingDiffFlag].(bool); applying {
				r.addLayer(ro, l.ID, fmt.Errorf("%slayer %s: %w", desc, l.ID, ErrLayerApplyUnfinished))
			}
			if !drv.Exists(l.ID) {
				r.addLayer(ro, l.ID, fmt.Errorf("%slayer %s: %w", desc, l.ID, ErrLayerDirMissing))
				continue
			}
			if opts.metadataOnly || l.UncompressedDigest == "" {
				continue
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			names, errs := s.checkLayerDigest(ctx, ls, l, desc)
			for _, e := range errs {
				r.addLayer(ro, l.ID, e)
			}
			if opts.Quick || ro || len(errs) > 0 || l.Flags[ParentUnknownFlag] == true {
				continue
			}
			errs, err := s.checkLayerChanges(ctx, l, names)
			if err != nil {
				return err
			}
			for _, e := range errs {
				r.addLayer(ro, l.ID, e)
			}
		}
	}
	// Dangling parents (reported on the child).
	for _, ls := range s.allLayerStores() {
		for _, l := range ls.All() {
			if l.Parent == "" {
				continue
			}
			if _, known := r.parents[l.Parent]; !known && !r.roSetAside {
				desc := ""
				if ls.ReadOnly() {
					desc = "read-only "
				}
				r.addLayer(ls.ReadOnly(), l.ID, fmt.Errorf("%slayer %s: %w", desc, l.Parent, ErrLayerMissing))
			}
		}
	}
	// Read-write layers that are otherwise sound must be mountable (upstream
	// mounts each one, in quick mode too; the driver tells without
	// mounting). Parents first: a layer whose ancestor is damaged is
	// reported as such below, not for the ancestor's fault.
	if mc, ok := drv.(driver.MountChecker); ok {
		depth := func(id string) int {
			d := 0
			for p := r.parents[id]; p != "" && d <= len(r.parents); p = r.parents[p] {
				d++
			}
			return d
		}
		rw := slices.Clone(s.layers.All())
		slices.SortStableFunc(rw, func(a, b *layer.Layer) int { return depth(a.ID) - depth(b.ID) })
		for _, l := range rw {
			sound := len(r.Layers[l.ID]) == 0
			for p, n := l.Parent, 0; sound && p != "" && n <= len(r.parents); p, n = r.parents[p], n+1 {
				sound = len(r.layerErrs(p)) == 0
			}
			if !sound {
				continue
			}
			if err := mc.CheckMountable(l.ID); err != nil {
				r.addLayer(false, l.ID, fmt.Errorf("layer %s: %w", l.ID, err))
			}
		}
	}
	// Read-write layers built on a damaged layer are damaged too.
	for _, l := range s.layers.All() {
		if len(r.Layers[l.ID]) > 0 {
			continue
		}
		for p := l.Parent; p != ""; p = r.parents[p] {
			if len(r.layerErrs(p)) > 0 {
				r.addLayer(false, l.ID, fmt.Errorf("layer %s: %w", p, ErrLayerParentDamaged))
				break
			}
			if _, known := r.parents[p]; !known {
				break
			}
		}
	}

	referenced := map[string]bool{}
	markChain := func(id string) {
		for ; id != "" && !referenced[id]; id = r.parents[id] {
			referenced[id] = true
		}
	}
	seenImages := map[string]bool{}
	for _, is := range s.allImageStores() {
		ro := is.ReadOnly()
		for _, img := range is.All() {
			if seenImages[img.ID] {
				continue
			}
			seenImages[img.ID] = true
			r.addImage(ro, img.ID, checkImageData(is, img)...)
			tops := append([]string{img.TopLayer}, img.MappedTopLayers...)
			done := map[string]bool{}
			for _, top := range tops {
				for id := top; id != "" && !done[id]; id = r.parents[id] {
					done[id] = true
					if _, known := r.parents[id]; !known {
						if r.roSetAside {
							break
						}
						desc := ""
						if ro {
							desc = "read-only "
						}
						r.addImage(ro, img.ID, fmt.Errorf("%simage %s: layer %s: %w", desc, img.ID, id, ErrImageLayerMissing))
						break
					}
					r.addImage(ro, img.ID, r.layerErrs(id)...)
				}
				markChain(top)
			}
		}
	}
	for _, c := range s.containers.All() {
		errs := checkContainerData(s.containers, c)
		if c.ImageID != "" {
			if !seenImages[c.ImageID] && !r.roSetAside {
				errs = append(errs, fmt.Errorf("image %s: %w", c.ImageID, ErrContainerImageMissing))
			}
			errs = append(errs, r.Images[c.ImageID]...)
			errs = append(errs, r.ROImages[c.ImageID]...)
		}
		if c.LayerID != "" {
			if _, known := r.parents[c.LayerID]; !known {
				if !r.roSetAside {
					errs = append(errs, fmt.Errorf("layer %s: %w", c.LayerID, ErrContainerLayerMissing))
				}
			} else {
				errs = append(errs, r.layerErrs(c.LayerID)...)
			}
			markChain(c.LayerID)
		}
		if len(errs) > 0 {
			r.Containers[c.ID] = append(r.Containers[c.ID], errs...)
		}
	}

	// A layer younger than the maximum age may be part of an image being
	// written right now: it and its ancestors count as referenced.
	now := time.Now()
	young := func(l *layer.Layer) bool {
		return !l.Created.IsZero() && l.Created.Add(opts.MaxUnreferencedAge).After(now)
	}
	for _, l := range s.layers.All() {
		if young(l) {
			markChain(l.ID)
		}
	}
	for _, l := range s.layers.All() {
		if !referenced[l.ID] && !r.roSetAside {
			r.addLayer(false, l.ID, fmt.Errorf("layer %s: %w", l.ID, ErrLayerUnreferenced))
		}
	}

	list, err := drv.ListLayers()
	if err != nil && !errors.Is(err, driver.ErrNotSupported) {
		return fmt.Errorf("listing the driver's layers: %w", err)
	}
	named := s.namedLayersLocked()
	r.committing = s.layers.LiveCommits()
	for _, id := range list {
		if _, known := r.parents[id]; known || r.committing[id] {
			continue
		}
		r.unaccounted = append(r.unaccounted, id)
		e := fmt.Errorf("layer %s: %w", id, ErrLayerUnaccounted)
		if _, isNamed := named[id]; isNamed || s.adoptable(id) {
			e = fmt.Errorf("layer %s: %w (repair re-creates its record)", id, ErrLayerUnaccounted)
		}
		r.Layers[id] = append(r.Layers[id], e)
	}
	return s.checkOrphansLocked(r)
}

// checkImageData checks an image's big-data files against the recorded sizes.
func checkImageData(is *image.Store, img *image.Image) []error {
	desc := ""
	if is.ReadOnly() {
		desc = "read-only "
	}
	var errs []error
	for _, key := range img.BigDataNames {
		err := checkDataFile(func() (string, error) { return is.BigDataPath(img.ID, key) }, img.BigDataSizes, key, ErrImageDataMissing, ErrImageDataIncorrectSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("%simage %s: data item %q: %w", desc, img.ID, key, err))
		}
	}
	return errs
}

// checkContainerData checks a container's big-data files against the recorded sizes.
func checkContainerData(cs *container.Store, c *container.Container) []error {
	var errs []error
	for _, key := range c.BigDataNames {
		err := checkDataFile(func() (string, error) { return cs.BigDataPath(c.ID, key) }, c.BigDataSizes, key, ErrContainerDataMissing, ErrContainerDataIncorrectSize)
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s: data item %q: %w", c.ID, key, err))
		}
	}
	return errs
}

func checkDataFile(pathOf func() (string, error), sizes map[string]int64, key string, missing, badSize error) error {
	p, err := pathOf()
	if err != nil {
		return err
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return missing
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file: %w", p, missing)
	}
	if want, ok := sizes[key]; ok && fi.Size() != want {
		return fmt.Errorf("%w (%d bytes, recorded %d)", badSize, fi.Size(), want)
	}
	return nil
}

// countingHash counts what is written to a hash.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// checkLayerDigest re-assembles the layer's diff from its tar-split and
// the driver's files, compares digest and size with the record, and
// returns the tar's member names.
//
// Locking: layer stores held.
func (s *Store) checkLayerDigest(ctx context.Context, ls *layer.Store, l *layer.Layer, desc string) ([]string, []error) {
	fail := func(err error) ([]string, []error) {
		return nil, []error{fmt.Errorf("%slayer %s: %w", desc, l.ID, err)}
	}
	if err := l.UncompressedDigest.Validate(); err != nil {
		return fail(err)
	}
	f, err := os.Open(ls.TarSplitPath(l.ID))
	if errors.Is(err, os.ErrNotExist) {
		return fail(ErrLayerTarSplitMissing)
	}
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	sum := &countingHash{h: l.UncompressedDigest.Algorithm().Hash()}
	pr, pw := io.Pipe()
	type result struct {
		names []string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		tr := tar.NewReader(pr)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				res.err = err
				break
			}
			res.names = append(res.names, hdr.Name)
		}
		_, _ = io.Copy(io.Discard, pr) // the trailer
		pr.Close()
		done <- res
	}()
	drv := s.graphDriver()
	err = tarsplit.Reassemble(ctx, io.MultiWriter(sum, pw), f, func(name string) (io.ReadCloser, error) {
		return drv.OpenFile(l.ID, name)
	})
	pw.CloseWithError(err)
	res := <-done
	switch {
	case err != nil && errors.Is(err, tarsplit.ErrFileIntegrity):
		return fail(err) // "file integrity checksum failed for NAME"
	case err != nil:
		return fail(err)
	case digest.NewDigest(l.UncompressedDigest.Algorithm(), sum.h) != l.UncompressedDigest:
		return fail(ErrLayerIncorrectContentDigest)
	case l.UncompressedSize > 0 && sum.n != l.UncompressedSize:
		return fail(fmt.Errorf("read %d bytes instead of %d bytes: %w", sum.n, l.UncompressedSize, ErrLayerIncorrectContentSize))
	case res.err != nil:
		return fail(fmt.Errorf("reading the re-assembled diff: %w", res.err))
	}
	return res.names, nil
}

// checkLayerChanges compares the driver's list of the layer's changes
// with the names in its diff: a path added or removed that the diff does
// not account for is reported (modifications of files the diff has are
// caught by the checksums of checkLayerDigest).
//
// Locking: layer stores held.
func (s *Store) checkLayerChanges(ctx context.Context, l *layer.Layer, names []string) ([]error, error) {
	changes, err := s.graphDriver().Changes(ctx, l.ID, l.Parent)
	if err != nil {
		return []error{fmt.Errorf("layer %s: listing changes: %w", l.ID, err)}, nil
	}
	present := map[string]bool{} // paths the diff creates, and their parent dirs
	deleted := map[string]bool{} // paths the diff whites out
	var opaque []string          // directories the diff makes opaque
	for _, n := range names {
		p := path.Clean("/" + strings.TrimPrefix(n, "./"))
		dir, base := path.Split(p)
		dir = path.Clean(dir)
		switch {
		case base == whiteoutOpaqueDir:
			opaque = append(opaque, dir)
			p = dir
		case strings.HasPrefix(base, whiteoutPrefix):
			deleted[path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))] = true
			p = dir
		}
		for ; p != "/" && !present[p]; p = path.Dir(p) {
			present[p] = true
		}
	}
	underDeleted := func(p string) bool {
		for q := p; q != "/"; q = path.Dir(q) {
			if deleted[q] {
				return true
			}
		}
		for _, o := range opaque {
			if strings.HasPrefix(p, o+"/") {
				return true
			}
		}
		return false
	}
	var errs []error
	for _, c := range changes {
		switch c.Kind {
		case archive.ChangeAdd:
			if !present[c.Path] {
				errs = append(errs, fmt.Errorf("layer %s: +%s, %w", l.ID, c.Path, ErrLayerContentModified))
			}
		case archive.ChangeDelete:
			if !underDeleted(c.Path) && !present[c.Path] {
				errs = append(errs, fmt.Errorf("layer %s: -%s, %w", l.ID, c.Path, ErrLayerContentModified))
			}
		}
	}
	return errs, nil
}

// checkOrphansLocked finds big-data directories and tar-split files of
// the read-write stores that no record owns, and leftover temp files.
//
// Locking: layers, images and containers held.
func (s *Store) checkOrphansLocked(r *CheckReport) error {
	layerDirs := []string{s.layers.Dir()}
	if s.opts.ImageStore != "" {
		layerDirs = append(layerDirs, filepath.Join(s.opts.ImageStore, s.driverName+"-layers"))
	}
	for _, dir := range layerDirs {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range ents {
			name := e.Name()
			full := filepath.Join(dir, name)
			switch {
			case isTempName(name):
				r.addTemp(full)
			case e.IsDir() && name != "tmp":
				if _, known := r.parents[name]; !known {
					r.addOrphan(r.Layers, name, full, fmt.Errorf("layer %s: big-data directory %s %w", name, full, ErrOrphanData))
				}
			case strings.HasSuffix(name, ".tar-split.gz"):
				id := strings.TrimSuffix(name, ".tar-split.gz")
				if _, known := r.parents[id]; !known && !r.committing[id] && !slices.Contains(r.unaccounted, id) {
					r.addOrphan(r.Layers, id, full, fmt.Errorf("layer %s: tar-split file %s %w", id, full, ErrOrphanData))
				}
			}
		}
	}
	for _, l := range s.layers.All() {
		if err := scanDataFiles(s.layers.BigDataDir(l.ID), l.BigDataNames, r, r.Layers, "layer", l.ID); err != nil {
			return err
		}
	}
	for _, is := range s.rwImageStores() {
		for _, img := range is.All() {
			if err := scanDataFiles(is.DataDir(img.ID), img.BigDataNames, r, r.Images, "image", img.ID); err != nil {
				return err
			}
		}
	}
	for _, c := range s.containers.All() {
		if err := scanDataFiles(s.containers.DataDir(c.ID), c.BigDataNames, r, r.Containers, "container", c.ID); err != nil {
			return err
		}
	}
	for _, is := range s.rwImageStores() {
		if err := scanOrphanDirs(is.Dir(), func(id string) bool { _, ok := is.Get(id); return ok }, r, r.Images, "image"); err != nil {
			return err
		}
	}
	return scanOrphanDirs(filepath.Dir(s.containers.DataDir("x")), func(id string) bool { _, ok := s.containers.Get(id); return ok }, r, r.Containers, "container")
}

func scanOrphanDirs(dir string, known func(string) bool, r *CheckReport, m map[string][]error, kind string) error {
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		full := filepath.Join(dir, e.Name())
		switch {
		case isTempName(e.Name()):
			r.addTemp(full)
		case e.IsDir() && !known(e.Name()):
			r.addOrphan(m, e.Name(), full, fmt.Errorf("%s %s: big-data directory %s %w", kind, e.Name(), full, ErrOrphanData))
		}
	}
	return nil
}

// scanDataFiles reports the regular files of a record's big-data
// directory that none of its big-data names maps to (subdirectories, such
// as a container's userdata, are not big data and are left alone).
func scanDataFiles(dir string, names []string, r *CheckReport, m map[string][]error, kind, id string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, n := range names {
		if f, err := table.BigDataFileName(n); err == nil {
			want[f] = true
		}
	}
	for _, e := range ents {
		full := filepath.Join(dir, e.Name())
		switch {
		case isTempName(e.Name()):
			r.addTemp(full)
		case e.Type().IsRegular() && !want[e.Name()]:
			r.addOrphan(m, id, full, fmt.Errorf("%s %s: big-data file %s %w", kind, id, full, ErrOrphanData))
		}
	}
	return nil
}

func (r *CheckReport) addOrphan(m map[string][]error, id, full string, err error) {
	m[id] = append(m[id], err)
	r.orphans[full] = id
}

func (r *CheckReport) addTemp(full string) {
	r.temps = append(r.temps, full)
	r.Files[full] = append(r.Files[full], fmt.Errorf("%s: %w", full, ErrLeftoverTemp))
}

// AUFS whiteout names as they appear in layer diffs.
const (
	whiteoutPrefix    = ".wh."
	whiteoutOpaqueDir = ".wh..wh..opq"
)

// isTempName matches the temporary files of fsx.AtomicWriteFile.
func isTempName(name string) bool { return strings.HasPrefix(name, ".tmp-") }
