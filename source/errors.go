package source

import "errors"

// Sentinel errors callers branch on.
var (
	// ErrBadReference: a reference or platform string that does not parse.
	ErrBadReference = errors.New("invalid image reference")
	// ErrNotFound: the reference names no image in the source.
	ErrNotFound = errors.New("image not found")
	// ErrNoPlatform: an index has no image for the wanted platform.
	ErrNoPlatform = errors.New("no image for the platform")
	// ErrBadManifest: a manifest, index or config that does not parse or
	// does not agree with itself.
	ErrBadManifest = errors.New("invalid image manifest")
	// ErrUnsupported: a media type or transport stowage does not read.
	ErrUnsupported = errors.New("unsupported")
	// ErrDigestMismatch: content whose digest is not the one named for it.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnauthorized: a registry refused the credentials (or their
	// absence): HTTP 401 or 403.
	ErrUnauthorized = errors.New("registry authentication failed")
)
