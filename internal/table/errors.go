package table

import "errors"

// Sentinel errors.
var (
	// ErrCorrupt marks a JSON file that cannot be decoded; the error
	// names the file and the byte offset. The file is never rewritten.
	ErrCorrupt = errors.New("corrupt metadata")
	// ErrReadOnly is returned when a read-only table is asked to write.
	ErrReadOnly = errors.New("called a write method on a read-only store")
	// ErrDuplicateID reports an ID that is already in the table.
	ErrDuplicateID = errors.New("that ID is already in use")
	// ErrDuplicateName reports a name another record already holds.
	ErrDuplicateName = errors.New("that name is already in use")
	// ErrDuplicateNames reports duplicate names found while loading a read-only table.
	ErrDuplicateNames = errors.New("read-only store has duplicate names")
	// ErrInvalidID reports a caller ID that would break paths or indexes.
	ErrInvalidID = errors.New("invalid ID")
)
