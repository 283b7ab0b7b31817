//go:build !linux || !cgo || !isal

package archive

import "io"

// isalAvailable: this build inflates gzip with Go (built without the isal tag).
const isalAvailable = false

func newISALReader(io.Reader) (io.ReadCloser, error) { panic("archive: built without ISA-L") }
