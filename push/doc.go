// Package push writes an image from the store to an OCI image layout, an
// OCI archive, a docker-archive or a registry: the reverse of package pull.
//
// Each layer is read back with Store.Diff (reassembled bit for bit from its
// tar-split when the layer was imported from a tar, so its diff ID is the
// one it was imported with), compressed as asked into a temporary file and
// served from there to go-containerregistry's writers (layout.Write,
// tarball.Write, remote.Write). The image config is the one stored under
// its digest as big data (containers/image and stowage pull both keep it
// there); an image without one gets a minimal config listing the layers'
// diff IDs.
//
// Locking: Export takes no lock itself; each Store.Diff holds the layer
// stores' read lock while one layer streams, so exports run beside pulls
// and other readers but wait for writers of the layer stores.
//
// Cancellation leaves at most a temporary directory under Options.TempDir
// that was not removed, plus a partial destination: a layout's blobs are
// content-addressed and index.json is replaced last; archive files are
// written to a temporary name and renamed into place only when complete;
// a registry keeps whatever blobs it already accepted (unreferenced).
package push
