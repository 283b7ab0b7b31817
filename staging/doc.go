// Package staging owns temp dirs in the containers/storage lock-<n> +
// temp-dir-<n> protocol (store-format.md §2.7, layers-and-drivers.md §7):
// creation under a held non-blocking lock, staged additions and deletions,
// cleanup, and recovery of dead owners' dirs.
//
// A Dir lives in a root such as G/<drv>-layers/tmp or H/tempdirs as the
// pair root/lock-<n> (held with lockfile.TryLock for the Dir's whole life)
// and root/temp-dir-<n> (0700). A process that dies drops its lock, so
// RecoverStale (run by any later writer) removes its dir; a live owner's
// dir is never touched, whichever process it is in.
//
// Locking: only non-blocking locks are taken, so staging cannot deadlock
// with the store's lock order (store-format.md §2.8) and may be used with or
// without store locks held. A Dir's methods are safe for concurrent use.
package staging
