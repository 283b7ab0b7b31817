// Package pull copies an image from a source.Source into a *store.Store:
// layers fetched, verified and extracted in parallel, committed in parent
// order, shared with concurrent pulls, and recorded the way
// containers/image records images so podman and skopeo use them.
// OpenSource parses transport references ("oci:DIR[:REF]",
// "oci-archive:FILE[:REF]", "docker-archive:FILE[:REF]",
// "docker://HOST/REPO[:TAG|@DIGEST]").
//
// Locking: Pull takes no store lock itself (the store's methods do). It
// holds Store.LockLayerFetch for each layer it creates, from before the
// layer is fetched until it is committed (and its commit finished) or the
// pull fails and has deleted it again, taking them in parent order (base
// first). An attempt that failed because a reused layer vanished keeps the
// locks of the layers it committed for the next attempt; those layers
// keep their parents, so the next attempt still takes any lock it waits
// for above the ones it holds. A layer's chain ID fixes all its ancestors,
// so a pull holding the lock of a layer at depth n waits only for locks
// at depths below n: pulls cannot deadlock on each other.
package pull
