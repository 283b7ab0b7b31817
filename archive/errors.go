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
	// ErrHeaderTooLarge reports a PAX extended header or GNU long name or
	// link of more than 1 MiB (the limit of Go's and tar-split's tar
	// readers, which containers-storage 1.43 shares): such layers are
	// refused rather than held in memory. No file system object needs one:
	// paths are at most 4 KiB and xattr values 64 KiB.
	ErrHeaderTooLarge = errors.New("tar header larger than 1 MiB (PAX records or GNU long name)")
)
