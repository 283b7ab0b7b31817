// Package source owns the Source interface: read access to one image's
// manifest, config and layer blobs, wherever it is kept. Implementations
// live in source/ocilayout (OCI image layouts), source/archive (oci-archive
// and docker-archive tar files) and source/registry (registries, through
// go-containerregistry); Open in source/open picks one from a transport
// reference such as "oci:DIR:REF" or "docker://HOST/REPO:TAG".
package source
