package overlay

import "errors"

// Sentinel errors.
var (
	// ErrMaxDepth: a layer has more lowers than the kernel stacks (500).
	ErrMaxDepth = errors.New("max depth exceeded")
	// ErrBadLayout: a layer's link or lower files are malformed.
	ErrBadLayout = errors.New("malformed overlay layer")
)
