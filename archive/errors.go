package archive

import "errors"

// Sentinel errors.
var (
	ErrUnsafePath       = errors.New("path escapes the layer directory")
	ErrDuplicatePath    = errors.New("duplicates of file paths not supported")
	ErrUnsupportedCompr = errors.New("unsupported compression format")
	// ErrSparse reports a GNU/PAX sparse entry, which tar-split cannot
	// regenerate bit for bit.
	ErrSparse = errors.New("sparse tar entries are not supported")
	// ErrUnsupportedType reports a tar entry type that cannot be extracted.
	ErrUnsupportedType = errors.New("unsupported tar entry type")
)
