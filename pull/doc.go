// Package pull copies an image from a source.Source into a *store.Store:
// layers fetched, verified and extracted in parallel, committed in parent
// order, shared with concurrent pulls, and recorded the way
// containers/image records images so podman and skopeo use them.
// OpenSource parses transport references ("oci:DIR[:REF]",
// "oci-archive:FILE[:REF]", "docker-archive:FILE[:REF]",
// "docker://HOST/REPO[:TAG|@DIGEST]").
package pull
