// Package store owns the Store: opening a graph root and run root,
// operations that span the layer, image and container tables, the lock
// order, and load-time recovery.
//
// Lock order (upstream's; take any subset, never in reverse):
//
//  1. G/storage.lock
//  2. G/userns.lock
//  3. primary layers.lock (then the imagestore's layers.lock), with
//     mountpoints.lock nested inside
//  4. read-only layer stores' layers.lock, in configured order
//  5. primary images.lock, then other read-write image stores
//  6. read-only image stores' images.lock, in configured order
//  7. containers.lock
//
// Glossary of parameter names: id is a full ID; nameOrID also accepts a
// name or an unambiguous ID prefix; diffID, blobDigest and tocDigest are
// the uncompressed, compressed and TOC digests of a layer.
package store
