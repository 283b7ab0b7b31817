package push

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Kind is the transport of a destination.
type Kind int

// Transports, named by their prefixes as skopeo spells them.
const (
	OCILayout     Kind = iota + 1 // oci:DIR[:REF]
	OCIArchive                    // oci-archive:FILE[:REF]
	DockerArchive                 // docker-archive:FILE[:NAME:TAG]
	Registry                      // docker://HOST/REPO:TAG or @DIGEST
)

func (k Kind) String() string {
	switch k {
	case OCILayout:
		return "oci"
	case OCIArchive:
		return "oci-archive"
	case DockerArchive:
		return "docker-archive"
	case Registry:
		return "docker"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Destination is a parsed destination string.
type Destination struct {
	Kind Kind
	// Path is the layout directory or archive file (OCILayout, OCIArchive,
	// DockerArchive).
	Path string
	// Ref is the layout's org.opencontainers.image.ref.name (OCILayout,
	// OCIArchive), the docker-archive's repo tag (DockerArchive) or the
	// registry reference (Registry); it may be empty for the first three.
	Ref string
}

func (d Destination) String() string {
	switch d.Kind {
	case Registry:
		return "docker://" + d.Ref
	case OCILayout, OCIArchive, DockerArchive:
		if d.Ref != "" {
			return d.Kind.String() + ":" + d.Path + ":" + d.Ref
		}
		return d.Kind.String() + ":" + d.Path
	}
	return "invalid"
}

// ParseDestination parses "oci:DIR[:REF]", "oci-archive:FILE[:REF]",
// "docker-archive:FILE[:NAME[:TAG]]" or "docker://REFERENCE". As in
// containers/image, the path ends at the first colon after the prefix.
func ParseDestination(s string) (Destination, error) {
	transport, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Destination{}, fmt.Errorf("%w %q: want oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:NAME:TAG] or docker://HOST/REPO:TAG", ErrBadDestination, s)
	}
	var d Destination
	switch transport {
	case "oci":
		d.Kind = OCILayout
	case "oci-archive":
		d.Kind = OCIArchive
	case "docker-archive":
		d.Kind = DockerArchive
	case "docker":
		ref, ok := strings.CutPrefix(rest, "//")
		if !ok || ref == "" {
			return Destination{}, fmt.Errorf("%w %q: a registry destination is docker://HOST/REPO:TAG", ErrBadDestination, s)
		}
		if _, err := name.ParseReference(ref, name.StrictValidation); err != nil {
			return Destination{}, fmt.Errorf("%w %q: %v", ErrBadDestination, s, err)
		}
		return Destination{Kind: Registry, Ref: ref}, nil
	default:
		return Destination{}, fmt.Errorf("%w %q: unknown transport %q (want oci, oci-archive, docker-archive or docker)", ErrBadDestination, s, transport)
	}
	d.Path, d.Ref, _ = strings.Cut(rest, ":")
	if d.Path == "" {
		return Destination{}, fmt.Errorf("%w %q: no path", ErrBadDestination, s)
	}
	if d.Kind == DockerArchive && d.Ref != "" {
		if _, err := name.NewTag(d.Ref); err != nil {
			return Destination{}, fmt.Errorf("%w %q: %v", ErrBadDestination, s, err)
		}
	}
	return d, nil
}
