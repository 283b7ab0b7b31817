// Package driver owns the storage-driver interface, its optional
// capabilities and the registry of driver constructors.
//
// CONTRACT: the exported signatures are fixed; driver/vfs (and later
// driver/overlay) implement them. Every method that touches the disk takes
// ctx first. The store serialises calls for one layer ID under
// layers.lock; drivers need no locking of their own except for
// process-wide state they keep.
package driver

import (
	"context"
	"errors"
	"io"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/internal/idmap"
)

// Sentinel errors.
var (
	ErrNotSupported  = errors.New("driver not supported")
	ErrLayerUnknown  = errors.New("layer not known")
	ErrBadMountOpt   = errors.New("mount option not supported")
	ErrDriverUnknown = errors.New("unknown storage driver")
)

// Options are what the store hands a driver at construction.
type Options struct {
	Root        string   // the driver home, G/<name>
	RunRoot     string   // R/<name>
	ImageStores []string // read-only additional image store roots (A); the driver home there is A/<name>
	// ImageStore is the split read-write image store root (I, the
	// --image-store / imagestore= storage.conf option), "" for none.
	// Layers created with ReadWrite false live under I/<name>; container
	// layers stay under Root. Added after the first contract.
	ImageStore     string
	DriverOptions  []string // "key=value" with the "<name>." or "." prefix already stripped
	UIDMap, GIDMap []idmap.IDMap
}

// CreateOptions describe a new layer.
type CreateOptions struct {
	MountLabel     string
	UIDMap, GIDMap []idmap.IDMap // mapping the layer's files are owned in
	ReadWrite      bool          // container layer
	// ParentUIDMap and ParentGIDMap are the mappings the parent's files
	// are owned in (the parent layer's record). When they differ from
	// UIDMap/GIDMap, a driver whose new layer starts as the parent's files
	// (vfs copies them) re-owns those files: host owner to container ID
	// through the parent's maps, then to host through the new maps. Added
	// after the first contract.
	ParentUIDMap, ParentGIDMap []idmap.IDMap
	// Volatile layers (those of volatile containers) are not flushed to
	// disk: their records are not either. Added with issue 4.
	Volatile bool
}

// MountOptions describe one Get.
type MountOptions struct {
	MountLabel string
	Options    []string // e.g. "ro"; vfs rejects everything else
	// UIDMap and GIDMap, when set, ask for the lowers to be shifted at
	// mount time (idmapped mounts): their files are owned by unmapped
	// IDs and appear owned through these maps. Only a driver whose
	// Shifter capability reports true honours them; others fail. The
	// store sets them only for a container whose layer is unmapped.
	UIDMap, GIDMap []idmap.IDMap
	// Volatile asks for a mount whose writes need not reach the disk
	// (overlay's "volatile" option, when the kernel has it): the store
	// sets it for volatile containers. Drivers without such a mode ignore
	// it. Added with issue 4.
	Volatile bool
}

// ApplyOptions describe a diff applied to a layer.
type ApplyOptions struct {
	UIDMap, GIDMap    []idmap.IDMap
	IgnoreChownErrors bool
	Unpack            archive.UnpackOptions // TarSplit and trusted digests; maps/whiteouts are set by the driver
	// DeferFlush (StageDiff only) leaves the staged tree unflushed and sets
	// Staged.Flush, which the caller must run before CommitStaged.
	DeferFlush bool
}

// Staged is a layer tree extracted outside the store locks, waiting to be
// committed under layers.lock by CommitStaged, or discarded.
type Staged struct {
	Result archive.UnpackResult
	// Driver-private state.
	Dir     string // the staged tree
	Cleanup func() error
	// Flush, when not nil (ApplyOptions.DeferFlush), makes the staged tree
	// durable as the driver's sync mode says; it must succeed before
	// CommitStaged. Trees flushed by one syncfs share it (fsx.FlushTreeSince).
	Flush func(ctx context.Context) error
}

// Driver is a storage driver.
type Driver interface {
	// Name is the driver name as recorded on disk ("vfs", "overlay").
	Name() string
	// Create makes an empty layer (a copy of parent for vfs).
	Create(ctx context.Context, id, parent string, opts CreateOptions) error
	// Remove deletes a layer; a missing layer is not an error.
	Remove(ctx context.Context, id string) error
	// Exists reports whether the layer's directory exists.
	Exists(id string) bool
	// Get mounts the layer (if the driver mounts) and returns its path.
	Get(ctx context.Context, id string, opts MountOptions) (string, error)
	// Put undoes one Get.
	Put(ctx context.Context, id string) error
	// StageDiff prepares a staged tree for a new layer on parent and
	// extracts blob into it. It runs WITHOUT store locks.
	StageDiff(ctx context.Context, parent string, blob io.Reader, opts ApplyOptions, create CreateOptions) (*Staged, error)
	// CommitStaged makes s the layer id. Locking: layers.lock held for
	// writing, or (see DeferredCommitter) the layer's commit marker.
	CommitStaged(ctx context.Context, id, parent string, s *Staged, opts CreateOptions) error
	// ApplyDiff extracts blob into the existing layer id in place.
	ApplyDiff(ctx context.Context, id, parent string, blob io.Reader, opts ApplyOptions) (archive.UnpackResult, error)
	// Diff writes an uncompressed tar of the changes of id against parent.
	Diff(ctx context.Context, w io.Writer, id, parent string, opts archive.ExportOptions) error
	// Changes lists the changes of id against parent.
	Changes(ctx context.Context, id, parent string) ([]archive.Change, error)
	// DiffSize returns the size of the changes of id against parent.
	DiffSize(ctx context.Context, id, parent string) (int64, error)
	// OpenFile opens a file of layer id by its path in the layer's diff
	// (used to reassemble tar-split diffs).
	OpenFile(id, path string) (io.ReadCloser, error)
	// ListLayers lists the layer directories the driver has on disk.
	ListLayers() ([]string, error)
	// Status returns driver status pairs (e.g. "Backing Filesystem").
	Status() [][2]string
	// Cleanup releases driver-level state at Shutdown.
	Cleanup(ctx context.Context) error
}

// TempDirRecoverer is an optional capability of drivers that keep staging
// temp dirs (the lock-<n>/temp-dir-<n> protocol) under their home. The store
// calls RecoverStaleTempDirs when it opens a read-write layer store; it
// removes only temp dirs whose owner no longer holds their lock.
type TempDirRecoverer interface {
	RecoverStaleTempDirs(ctx context.Context) error
}

// DeferredCommitter is an optional capability of drivers that can split
// CommitStaged: CommitStagedDeferSync makes the staged tree the layer id
// (visible to other processes) like CommitStaged, but instead of flushing
// the new directory entries and layout files itself it returns those
// flushes as flush (nil when there is nothing to flush, e.g. a volatile
// layer). The caller must run flush, and see it succeed, before anything
// that names the layer (its record) is made durable, and may run it
// concurrently with other flushes so that they share the file system's
// journal commit. If flush fails the caller removes the layer.
//
// Locking: the store holds the layer's commit marker (nobody else creates
// or removes a layer of that ID meanwhile) and no store lock: the driver
// must not depend on layers.lock here, nor on other layers than parent
// staying unchanged. flush needs no lock but must finish before the
// record is made durable.
type DeferredCommitter interface {
	CommitStagedDeferSync(ctx context.Context, id, parent string, s *Staged, opts CreateOptions) (flush func(context.Context) error, err error)
}

// DiffDirGetter is an optional capability of drivers whose layer files
// (the layer's own diff) are a plain directory tree, as OpenFile sees
// them. Reassembling a tar-split diff then opens the files through one
// tarsplit.LayerDir, one openat2 per file from a held descriptor of the
// directory, instead of one OpenFile (lookup, root open, openat2) per file.
type DiffDirGetter interface {
	DiffDir(id string) (string, error)
}

// MountPather is an optional capability of drivers whose Get mounts a
// file system at a fixed path per layer (overlay's merged dir): Repair
// uses it to find mounts whose mountpoints.json record was lost. Added
// with issue 4.
type MountPather interface {
	MountPath(id string) (string, error)
}

// MountChecker is an optional capability of drivers whose Get can fail
// for a layer whose directory exists (overlay: a lower that does not
// resolve). CheckMountable reports, without mounting, what would make Get
// fail; Check runs it on every read-write layer, as upstream's check
// mounts each one. Added with issue 4.
type MountChecker interface {
	CheckMountable(id string) error
}

// Shifter is an optional capability of drivers that can shift IDs at
// mount time (overlay with idmapped lower mounts). When SupportsShifting
// reports true the store keeps layers unmapped on disk and lets Get map
// a container's lowers through its maps, as containers/storage does;
// otherwise layers are chowned to their maps when written. Added with
// the overlay ID-mapping work.
type Shifter interface {
	SupportsShifting() bool
}

// New constructs a driver.
type New func(ctx context.Context, opts Options) (Driver, error)

// ParentRecorder is an optional capability of drivers that keep a layer's
// parent on disk (overlay's lower-layers). Check's repair uses it to
// re-create the record of a layer whose record was lost. LayerParent
// returns "" for a base layer; known is false when the driver cannot tell.
type ParentRecorder interface {
	LayerParent(id string) (parent string, known bool, err error)
}
