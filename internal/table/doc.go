// Package table owns the generic JSON record table shared by the layer,
// image and container stores: the lock file and its last-writer token,
// reload-if-changed, load of one or more location files, ID and name
// indexes, duplicate-name repair, and atomic saves. It is the only package
// that calls Lock/Unlock on the stores' lock files.
//
// Locking: a Table's cached records and indexes are guarded by its lock
// file (cross-process) plus the in-process mutex mu, which is taken only
// while reloading or invalidating the cache. Callers reach the records
// only between LockRead/LockWrite and the returned unlock function;
// mutating methods require the write lock (asserted where they save).
package table
