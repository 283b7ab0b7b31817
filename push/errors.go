package push

import "errors"

// Sentinel errors.
var (
	// ErrBadDestination reports a destination string that names no known
	// transport or is malformed.
	ErrBadDestination = errors.New("invalid destination")
	// ErrDiffIDMismatch reports a layer whose exported diff does not hash
	// to the diff ID recorded in the image's config.
	ErrDiffIDMismatch = errors.New("exported layer does not match the image's diff ID")
	// ErrBadCompression reports an unknown compression name.
	ErrBadCompression = errors.New("unknown compression")
	// ErrNotFromIndex reports a PushAll of an image that was not pulled
	// from a multi-platform index.
	ErrNotFromIndex = errors.New("image was not pulled from a multi-platform index")
)
