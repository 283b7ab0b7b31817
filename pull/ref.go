package pull

import (
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/stowage/stowage/source"
	"github.com/stowage/stowage/source/archive"
	"github.com/stowage/stowage/source/ocilayout"
	"github.com/stowage/stowage/source/registry"
)

// SourceOptions configure OpenSource. The zero value picks linux on the
// running architecture from indexes.
type SourceOptions struct {
	Platform v1.Platform // zero: source.DefaultPlatform
	// Insecure lists registry hosts reached over plain HTTP besides
	// localhost and loopback addresses.
	Insecure []string
	// AuthFile, if set, is the only file registry credentials are read
	// from (podman's --authfile); else the usual locations are searched.
	AuthFile string
}

// Transports lists the reference prefixes OpenSource accepts.
var Transports = []string{"oci:", "oci-archive:", "docker-archive:", "docker://"}

// OpenSource opens the image ref names, in containers/image's transport
// syntax:
//
//	oci:DIR[:REF]              an OCI layout directory; REF is a ref.name
//	                           annotation or a manifest digest
//	oci-archive:FILE[:REF]     the same in a tar file
//	docker-archive:FILE[:REF]  a `docker save` file; REF is one of its
//	                           tags or @N (its position)
//	docker://HOST/REPO[:TAG|@DIGEST]  a registry
//
// A path ends at its first ':' (as in containers/image).
func OpenSource(ref string, opts SourceOptions) (source.Source, error) {
	if opts.Platform.OS == "" {
		opts.Platform = source.DefaultPlatform()
	}
	transport, rest, ok := strings.Cut(ref, ":")
	if !ok || rest == "" {
		return nil, fmt.Errorf("image reference %q: want one of %s: %w", ref, strings.Join(Transports, " "), source.ErrBadReference)
	}
	path, sub, _ := strings.Cut(rest, ":")
	switch transport {
	case "oci":
		return ocilayout.Open(path, ocilayout.Options{Ref: sub, Platform: opts.Platform})
	case "oci-archive":
		return archive.OpenOCI(path, ocilayout.Options{Ref: sub, Platform: opts.Platform})
	case "docker-archive":
		return archive.OpenDocker(path, archive.DockerOptions{Ref: sub})
	case "docker":
		if !strings.HasPrefix(rest, "//") {
			return nil, fmt.Errorf("image reference %q: want docker://HOST/REPO[:TAG]: %w", ref, source.ErrBadReference)
		}
		ropts := registry.Options{Platform: opts.Platform, Insecure: opts.Insecure}
		if opts.AuthFile != "" {
			ropts.Keychain = registry.FileKeychain(opts.AuthFile)
		}
		return registry.Open(rest[2:], ropts)
	}
	return nil, fmt.Errorf("image reference %q: transport %q is not one of %s: %w", ref, transport, strings.Join(Transports, " "), source.ErrUnsupported)
}

// SuggestedNames turns names a source suggests (a docker-archive's
// RepoTags, a registry tag) into normalized image names; ones that do
// not parse are left out.
func SuggestedNames(img *source.Image) []string {
	var out []string
	for _, n := range img.Names {
		if nn, err := NormalizeName(n); err == nil {
			out = append(out, nn)
		}
	}
	return out
}
