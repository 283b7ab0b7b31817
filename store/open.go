package store

// Locking: the Store's fields are fixed at Open and safe without locks.
// The record tables behind them are reached only through lockStores (or
// the per-table LockRead/LockWrite inside internal/table), in the order
// written in doc.go. storage.lock is taken for writing around Mount,
// Unmount and Shutdown (v1.43 and main both do).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/stowage/stowage/container"
	"github.com/stowage/stowage/driver"
	"github.com/stowage/stowage/driver/register"
	"github.com/stowage/stowage/image"
	"github.com/stowage/stowage/internal/table"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/lockfile"
	"github.com/stowage/stowage/staging"
)

// Store is an open store. Safe for concurrent use by goroutines; shares the
// directories with other processes through the lock files.
type Store struct {
	// Fixed at Open; safe without locks.
	opts        Options
	driverName  string
	driverOpts  []string         // driver options after prefix stripping (without imagestore)
	roRoots     []string         // read-only additional image store roots (A)
	graphLock   *table.GraphLock // G/storage.lock
	usernsLock  *table.GraphLock // G/userns.lock (no automatic userns yet: only created)
	drvName     string           // the name the driver was constructed by
	drvOpts     driver.Options   // what the driver is (re-)constructed with
	layers      *layer.Store     // primary read-write layer store
	roLayers    []*layer.Store   // additional read-only stores, in configured order
	images      *image.Store     // primary read-write image store (I when split)
	extraImages []*image.Store   // other read-write image stores (G when split)
	roImages    []*image.Store   // additional read-only image stores
	containers  *container.Store // the container store

	// drvMu guards drv and graphSeen: the driver object is re-created
	// when storage.lock's token moves (another process ran Shutdown).
	drvMu     sync.Mutex
	drv       driver.Driver
	graphSeen lockfile.LastWrite // storage.lock token drv was made under
}

// Open opens (creating as needed) the store; it recovers incomplete layers
// and stale temp dirs. A cancelled ctx leaves only created directories.
func Open(ctx context.Context, opts Options) (*Store, error) {
	s, err := openNoLoad(ctx, opts)
	if err != nil {
		return nil, err
	}
	// First load: repairs incomplete layers and duplicate names.
	unlock, err := s.lockStores(ctx, lockSpec{layers: modeRead, images: modeRead, containers: modeRead})
	if err != nil {
		return nil, err
	}
	unlock()
	if err := s.removeStaleTemps(ctx); err != nil {
		return nil, err
	}
	// Staging dirs of dead processes: each is guarded by its own instance
	// lock, so no store lock is needed (or held) to remove them.
	_ = s.recoverStale() // best effort; the next Open or gc retries
	return s, nil
}

// openNoLoad is Open without the first load of the tables (OpenForCheck
// uses it on stores whose metadata may not decode).
func openNoLoad(ctx context.Context, opts Options) (*Store, error) {
	if opts.GraphRoot == "" || opts.RunRoot == "" {
		return nil, ErrIncompleteOptions
	}
	s := &Store{opts: opts}
	for _, d := range []string{opts.GraphRoot, opts.RunRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	candidates, err := s.detectDriver()
	if err != nil {
		return nil, err
	}
	if s.graphLock, err = table.NewGraphLock(filepath.Join(opts.GraphRoot, "storage.lock")); err != nil {
		return nil, err
	}
	if s.usernsLock, err = table.NewGraphLock(filepath.Join(opts.GraphRoot, "userns.lock")); err != nil {
		return nil, err
	}
	for _, d := range []string{"mounts", "tmp"} { // v1.43 creates these
		if err := os.MkdirAll(filepath.Join(opts.GraphRoot, d), 0o700); err != nil {
			return nil, err
		}
	}
	if err := s.initFirstDriver(ctx, candidates); err != nil {
		return nil, err
	}
	if s.graphDriver().Name() != "" {
		s.driverName = s.graphDriver().Name()
	}
	if err := s.openTables(); err != nil {
		return nil, err
	}
	return s, nil
}

// removeStaleTemps removes the temp JSON files that writers killed during
// a save left beside the record files, each table under its own write
// lock (taken only when there is something to remove), in lock order.
func (s *Store) removeStaleTemps(ctx context.Context) error {
	removers := []func(context.Context) (int, error){s.layers.RemoveStaleTemps, s.images.RemoveStaleTemps}
	for _, is := range s.extraImages {
		removers = append(removers, is.RemoveStaleTemps)
	}
	removers = append(removers, s.containers.RemoveStaleTemps)
	for _, rm := range removers {
		if _, err := rm(ctx); err != nil {
			return err
		}
	}
	return nil
}

// initDriver constructs the driver and remembers storage.lock's token.
func (s *Store) initDriver(ctx context.Context) error {
	gunlock, err := s.graphLock.LockRead(ctx)
	if err != nil {
		return err
	}
	defer gunlock()
	s.drvMu.Lock()
	defer s.drvMu.Unlock()
	if s.graphSeen, _, err = s.graphLock.ModifiedSince(lockfile.LastWrite{}); err != nil {
		return err
	}
	d, err := register.New(ctx, s.drvName, s.drvOpts)
	if err != nil {
		return fmt.Errorf("initializing driver %s: %w", s.drvName, err)
	}
	s.drv = d
	return nil
}

// graphDriver returns the current driver object.
func (s *Store) graphDriver() driver.Driver {
	s.drvMu.Lock()
	defer s.drvMu.Unlock()
	return s.drv
}

// refreshDriverLocked re-creates the driver object if storage.lock's token
// changed since it was made (another process's Shutdown tore down
// driver-level state; spec §2.5). The old object is dropped without
// Cleanup: the shutdown already did that.
//
// Locking: storage.lock held (R or W).
func (s *Store) refreshDriverLocked(ctx context.Context) error {
	s.drvMu.Lock()
	defer s.drvMu.Unlock()
	cur, changed, err := s.graphLock.ModifiedSince(s.graphSeen)
	if err != nil || !changed {
		return err
	}
	d, err := register.New(ctx, s.drvName, s.drvOpts)
	if err != nil {
		return fmt.Errorf("re-initializing driver %s after a shutdown: %w", s.drvName, err)
	}
	s.drv, s.graphSeen = d, cur
	return nil
}

// checkDriver takes storage.lock for reading just long enough to
// refresh the driver object.
func (s *Store) checkDriver(ctx context.Context) error {
	gunlock, err := s.graphLock.LockRead(ctx)
	if err != nil {
		return err
	}
	defer gunlock()
	return s.refreshDriverLocked(ctx)
}

// lockGraphWrite takes storage.lock for writing (around mounts and
// Shutdown) and refreshes the driver object.
func (s *Store) lockGraphWrite(ctx context.Context) (func(), error) {
	gunlock, err := s.graphLock.LockWrite(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.refreshDriverLocked(ctx); err != nil {
		gunlock()
		return nil, err
	}
	return gunlock, nil
}

func (s *Store) detectDriver() ([]string, error) {
	name := s.opts.GraphDriverName
	if name == "overlay2" {
		name = "overlay"
	}
	if name != "" {
		return []string{name}, nil
	}
	var found []string
	for _, n := range register.Names() {
		if fi, err := os.Stat(filepath.Join(s.opts.GraphRoot, n)); err == nil && fi.IsDir() {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 1:
		return found, nil
	case 0:
		if len(register.Names()) == 0 {
			return nil, driver.ErrDriverUnknown
		}
		return register.Names(), nil
	}
	return nil, fmt.Errorf("%s has driver homes for %v: choose a driver explicitly: %w", s.opts.GraphRoot, found, driver.ErrNotSupported)
}

// initFirstDriver constructs the first of candidates that works here. A
// candidate that reports driver.ErrNotSupported (e.g. no overlay in the
// kernel) is skipped when there are others to try; drivers check support
// before they create anything, so a skipped one leaves no home behind.
func (s *Store) initFirstDriver(ctx context.Context, candidates []string) error {
	var err error
	for i, name := range candidates {
		s.driverName, s.drvName = name, name
		s.roRoots, s.driverOpts = nil, nil
		s.parseDriverOptions()
		s.drvOpts = driver.Options{
			Root:          filepath.Join(s.opts.GraphRoot, name),
			RunRoot:       filepath.Join(s.opts.RunRoot, name),
			ImageStores:   s.roRoots,
			ImageStore:    s.opts.ImageStore,
			DriverOptions: s.driverOpts,
			UIDMap:        s.opts.UIDMap,
			GIDMap:        s.opts.GIDMap,
		}
		if err = s.initDriver(ctx); err == nil || i == len(candidates)-1 || !errors.Is(err, driver.ErrNotSupported) {
			return err
		}
	}
	return err
}

// parseDriverOptions keeps options addressed to this driver ("<drv>.k=v",
// ".k=v" or "k=v"), and turns imagestore=A into read-only image stores.
func (s *Store) parseDriverOptions() {
	for _, o := range s.opts.GraphDriverOptions {
		key, val, _ := strings.Cut(o, "=")
		switch {
		case strings.HasPrefix(key, s.driverName+"."):
			key = strings.TrimPrefix(key, s.driverName+".")
		case strings.HasPrefix(key, "overlay2.") && s.driverName == "overlay":
			key = strings.TrimPrefix(key, "overlay2.")
		case strings.HasPrefix(key, "."):
			key = key[1:]
		case strings.Contains(key, "."):
			continue // another driver's option
		}
		switch strings.ToLower(key) {
		case "imagestore", "additionalimagestore":
			for _, a := range strings.Split(val, ",") {
				if a != "" {
					s.roRoots = append(s.roRoots, a)
				}
			}
			continue
		}
		s.driverOpts = append(s.driverOpts, key+"="+val)
	}
}

func (s *Store) openTables() error {
	g, r, d := s.opts.GraphRoot, s.opts.RunRoot, s.driverName
	lopts := layer.Options{
		Dir:    filepath.Join(g, d+"-layers"),
		RunDir: filepath.Join(r, d+"-layers"),
		RemoveLayer: func(ctx context.Context, id string) error {
			return s.graphDriver().Remove(ctx, id)
		},
	}
	if s.opts.ImageStore != "" {
		lopts.ImageStoreDir = filepath.Join(s.opts.ImageStore, d+"-layers")
	}
	if s.opts.TransientStore {
		lopts.VolatileDir = lopts.RunDir
	}
	var err error
	if s.layers, err = layer.Open(lopts); err != nil {
		return err
	}
	for _, a := range s.roRoots {
		ls, err := layer.Open(layer.Options{Dir: filepath.Join(a, d+"-layers"), ReadOnly: true})
		if err != nil {
			return fmt.Errorf("additional image store %s: %w", a, err)
		}
		s.roLayers = append(s.roLayers, ls)
	}
	imgRoot := g
	if s.opts.ImageStore != "" {
		imgRoot = s.opts.ImageStore
	}
	if s.images, err = image.Open(image.Options{Dir: filepath.Join(imgRoot, d+"-images")}); err != nil {
		return err
	}
	if s.opts.ImageStore != "" {
		extra, err := image.Open(image.Options{Dir: filepath.Join(g, d+"-images")})
		if err != nil {
			return err
		}
		s.extraImages = append(s.extraImages, extra)
	}
	for _, a := range s.roRoots {
		is, err := image.Open(image.Options{Dir: filepath.Join(a, d+"-images"), ReadOnly: true})
		if err != nil {
			return fmt.Errorf("additional image store %s: %w", a, err)
		}
		s.roImages = append(s.roImages, is)
	}
	copts := container.Options{Dir: filepath.Join(g, d+"-containers")}
	if s.opts.TransientStore {
		copts.LockDir = filepath.Join(r, d+"-containers")
	}
	if s.containers, err = container.Open(copts); err != nil {
		return err
	}
	return os.MkdirAll(filepath.Join(r, d+"-containers"), 0o700)
}

// recoverStale removes temp dirs whose owners died: the layer store's tmp
// and the driver's staging temp dirs (through driver.TempDirRecoverer when
// the driver has it, which covers I/<drv>/tempdirs of a split image store
// too; else G/<drv>/tempdirs directly).
func (s *Store) recoverStale() error {
	var errs []error
	roots := []string{filepath.Join(s.layers.Dir(), "tmp")}
	if r, ok := s.graphDriver().(driver.TempDirRecoverer); ok {
		if err := r.RecoverStaleTempDirs(context.Background()); err != nil {
			errs = append(errs, err)
		}
	} else {
		roots = append(roots, filepath.Join(s.opts.GraphRoot, s.driverName, "tempdirs"))
	}
	for _, root := range roots {
		if _, err := os.Stat(root); err != nil {
			continue
		}
		if err := staging.RecoverStale(root); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Close releases in-process resources. It does not unmount anything.
func (s *Store) Close() error { return nil }

// GraphRoot returns G.
func (s *Store) GraphRoot() string { return s.opts.GraphRoot }

// RunRoot returns R.
func (s *Store) RunRoot() string { return s.opts.RunRoot }

// GraphDriverName returns the driver name as recorded on disk.
func (s *Store) GraphDriverName() string { return s.driverName }

// GraphOptions returns the driver options as given to Open.
func (s *Store) GraphOptions() []string { return s.opts.GraphDriverOptions }

// ImageStore returns the split image store root, if any.
func (s *Store) ImageStore() string { return s.opts.ImageStore }

// TransientStore reports whether containers are volatile and their lock lives in R.
func (s *Store) TransientStore() bool { return s.opts.TransientStore }

// lock modes for lockStores.
type lockMode int

const (
	modeNone lockMode = iota
	modeRead
	modeWrite
)

// lockSpec says which tables an operation locks and how. Read-only
// stores are always read-locked when their kind is locked at all.
// graphWrite first takes storage.lock for writing (mounts, Shutdown);
// else locking layers first checks storage.lock's token. Either way the
// driver object is refreshed if another process re-initialized it.
type lockSpec struct {
	layers, images, containers lockMode
	graphWrite                 bool
	userns                     bool // G/userns.lock for writing (containers with ID mappings)
}

// lockStores takes the locks in the order of doc.go (storage.lock, if
// graphWrite, then userns.lock, if userns, before the tables) and returns a function that releases
// them in reverse.
func (s *Store) lockStores(ctx context.Context, spec lockSpec) (func(), error) {
	var unlocks []func()
	if spec.graphWrite {
		gunlock, err := s.lockGraphWrite(ctx)
		if err != nil {
			return nil, err
		}
		unlocks = append(unlocks, gunlock)
	} else if spec.layers != modeNone {
		if err := s.checkDriver(ctx); err != nil {
			return nil, err
		}
	}
	if spec.layers != modeNone {
		// Layer planning asks whether the driver shifts IDs; the first
		// ask probes the kernel (overlay: a test mount, tens of
		// milliseconds, then cached in the run root). Probe before the
		// lock so that cost never lengthens a layers.lock hold.
		if sh, ok := s.graphDriver().(driver.Shifter); ok {
			sh.SupportsShifting()
		}
	}
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	if spec.userns {
		uunlock, err := s.usernsLock.LockWrite(ctx)
		if err != nil {
			release()
			return nil, err
		}
		unlocks = append(unlocks, uunlock)
	}
	take := func(m lockMode, rd, wr func(context.Context) (func(), error)) error {
		var u func()
		var err error
		switch m {
		case modeNone:
			return nil
		case modeRead:
			u, err = rd(ctx)
		case modeWrite:
			u, err = wr(ctx)
		}
		if err != nil {
			return err
		}
		unlocks = append(unlocks, u)
		return nil
	}
	steps := []func() error{
		func() error { return take(spec.layers, s.layers.LockRead, s.layers.LockWrite) },
		func() error {
			if spec.layers == modeNone {
				return nil
			}
			for _, l := range s.roLayers {
				if err := take(modeRead, l.LockRead, nil); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { return take(spec.images, s.images.LockRead, s.images.LockWrite) },
		func() error {
			for _, is := range s.extraImages {
				if err := take(spec.images, is.LockRead, is.LockWrite); err != nil {
					return err
				}
			}
			if spec.images == modeNone {
				return nil
			}
			for _, is := range s.roImages {
				if err := take(modeRead, is.LockRead, nil); err != nil {
					return err
				}
			}
			return nil
		},
		func() error { return take(spec.containers, s.containers.LockRead, s.containers.LockWrite) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			release()
			return nil, err
		}
	}
	return release, nil
}

// allLayerStores returns the primary then the read-only layer stores.
func (s *Store) allLayerStores() []*layer.Store {
	return append([]*layer.Store{s.layers}, s.roLayers...)
}

// allImageStores returns the read-write then the read-only image stores.
func (s *Store) allImageStores() []*image.Store {
	return append(s.rwImageStores(), s.roImages...)
}

// newID returns a fresh ID not used by any store of the kinds given.
func newID(taken func(string) bool) (string, error) { return table.NewID(taken) }
