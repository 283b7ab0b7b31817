// Package staging owns temp dirs in the containers/storage lock-<n> +
// temp-dir-<n> protocol: creation under a held non-blocking lock, staged
// additions and deletions, cleanup, and recovery of dead owners' dirs.
package staging

import "errors"

// Dir is one live temp dir: root/temp-dir-<n>, kept alive by root/lock-<n>.
type Dir struct {
	root, path string
}

// New creates root (0700) if needed, then lock-<n> (held) and temp-dir-<n>.
func New(root string) (*Dir, error) { return nil, errors.New("staging: not implemented") }

// Path returns the temp-dir-<n> directory.
func (d *Dir) Path() string { return d.path }

// Addition returns a fresh path "<k>-addition" inside the dir without creating it.
func (d *Dir) Addition() string { return "" }

// StageDeletion renames path into the dir so it can be removed later.
func (d *Dir) StageDeletion(path string) error { return errors.New("staging: not implemented") }

// Cleanup removes the temp dir recursively, then unlocks and unlinks the lock file. Idempotent.
func (d *Dir) Cleanup() error { return nil }

// RecoverStale removes every temp dir under root whose lock nobody holds.
func RecoverStale(root string) error { return errors.New("staging: not implemented") }
