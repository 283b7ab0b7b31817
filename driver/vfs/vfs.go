// Package vfs owns the vfs driver: every layer a full copy of its parent
// under G/vfs/dir/<id>, reflinked where the file system can.
package vfs

import (
	"context"
	"errors"

	"github.com/stowage/stowage/driver"
)

// New constructs the vfs driver.
func New(ctx context.Context, opts driver.Options) (driver.Driver, error) {
	return nil, errors.New("vfs: not implemented")
}
