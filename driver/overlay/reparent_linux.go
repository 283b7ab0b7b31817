package overlay

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/stowage/stowage/driver"
)

// StagesWithoutParent reports that an overlay diff does not depend on the
// parent's files: a tree staged with parent "" can be committed on any
// parent after ReparentStaged. The store finds this by type assertion.
func (d *Driver) StagesWithoutParent() bool { return true }

// ReparentStaged gives the root of s, staged with parent "", the owner and
// mode a tree staged on parent would have had (the parent's diff root),
// unless the diff's own "./" entry set them. parent "" leaves s as it is.
//
// Locking: layers.lock held (the parent must not go away meanwhile).
func (d *Driver) ReparentStaged(s *driver.Staged, parent string) error {
	if s == nil || s.Dir == "" {
		return errors.New("overlay reparent: no staged layer")
	}
	if parent == "" || s.Result.RootSet {
		return nil
	}
	mode, uid, gid, err := d.diffAttrs(parent, nil, nil)
	if err != nil {
		return fmt.Errorf("overlay reparent on %s: %w", parent, err)
	}
	if err := driver.LchownIfNeeded(s.Dir, uid, gid); err != nil {
		return fmt.Errorf("overlay reparent on %s: %w", parent, err)
	}
	if err := unix.Chmod(s.Dir, mode); err != nil {
		return fmt.Errorf("overlay reparent on %s: chmod %s: %w", parent, s.Dir, err)
	}
	return nil
}
