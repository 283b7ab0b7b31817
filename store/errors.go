package store

import (
	"errors"

	"github.com/stowage/stowage/internal/table"
)

// Sentinel errors; the texts are containers/storage's, which scripts match.
var (
	ErrLayerUnknown     = errors.New("layer not known")
	ErrImageUnknown     = errors.New("image not known")
	ErrContainerUnknown = errors.New("container not known")
	ErrNotALayer        = errors.New("identifier is not a layer")
	ErrNotAnImage       = errors.New("identifier is not an image")
	ErrNotAContainer    = errors.New("identifier is not a container")
	// ErrNotAnID is what operations on any kind of object (SetMetadata)
	// return for an identifier that names none.
	ErrNotAnID              = errors.New("identifier is not a layer, image, or container")
	ErrDuplicateID          = errors.New("that ID is already in use")
	ErrDuplicateName        = errors.New("that name is already in use")
	ErrLayerHasChildren     = errors.New("layer has children")
	ErrLayerUsedByImage     = errors.New("layer is in use by an image")
	ErrLayerUsedByContainer = errors.New("layer is in use by a container")
	ErrImageUsedByContainer = errors.New("image is in use by a container")
	ErrLayerNotMounted      = errors.New("layer is not mounted")
	ErrParentUnknown        = errors.New("parent of layer not known")
	ErrSizeUnknown          = errors.New("size is not known")
	ErrDigestUnknown        = errors.New("could not compute digest of item")
	ErrStoreIsReadOnly      = errors.New("called a write method on a read-only store")
	ErrNotSupported         = errors.New("not supported")
	ErrInvalidBigDataName   = table.ErrInvalidBigDataName
	ErrLayerMounted         = errors.New("a layer is mounted")
	ErrIncompleteOptions    = errors.New("no storage runroot or graphroot specified")
	// ErrCorruptMetadata is the table package's sentinel, so errors.Is
	// works on load errors whichever package wrapped them.
	ErrCorruptMetadata = table.ErrCorrupt
	// ErrParentIsContainer refuses a container's layer as a new layer's parent.
	ErrParentIsContainer = errors.New("would-be parent layer is a container")
	// ErrInvalidID refuses caller IDs with "/", "..", blanks, or empty ones.
	ErrInvalidID = table.ErrInvalidID
)
