package fsx

import "context"

// Remap returns the new host owner of a file owned by host uid:gid, or an
// error if the owner cannot be carried over.
type Remap func(uid, gid int) (newUID, newGID int, err error)

// ShiftOwners re-owns every entry of the tree at root, root included,
// through remap (nil: nothing to do). Symbolic links are changed
// themselves, never followed. Each multiply-linked file is remapped once.
// Set-user-ID and set-group-ID bits (which chown clears) and the
// security.capability xattr (which the kernel drops on chown) are restored
// as they were. An error from remap stops the walk, wrapped with the path;
// so does a cancelled ctx. Either leaves the tree partly re-owned.
func ShiftOwners(ctx context.Context, root string, remap Remap) error {
	if remap == nil {
		return nil
	}
	return shiftOwners(ctx, root, remap, false)
}

// ShiftOwnersPerName is ShiftOwners re-owning every name of a
// multiply-linked file from its own stat. Through an overlay mount,
// re-owning one name of a lower file's hard links copies up only that
// name, so each name needs its own chown.
func ShiftOwnersPerName(ctx context.Context, root string, remap Remap) error {
	if remap == nil {
		return nil
	}
	return shiftOwners(ctx, root, remap, true)
}
