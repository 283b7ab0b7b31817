package staging

import "errors"

// ErrCleanedUp is returned when a Dir is used after Cleanup.
var ErrCleanedUp = errors.New("temp dir already cleaned up")
