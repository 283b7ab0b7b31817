package pull

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/source"
)

// LayerIDs returns the layer IDs containers/image gives an image's layers
// when it pulls without a TOC: the first layer's ID is its diff ID's hex;
// each next one is the hex SHA-256 of "<parent ID>+<diff ID hex>". Equal
// IDs mean equal chains, so podman, skopeo and stowage share layers.
func LayerIDs(diffIDs []digest.Digest) []string {
	ids := make([]string, len(diffIDs))
	parent := ""
	for i, d := range diffIDs {
		id := d.Encoded()
		if parent != "" {
			id = digest.Canonical.FromString(parent + "+" + d.Encoded()).Encoded()
		}
		ids[i], parent = id, id
	}
	return ids
}

// NormalizeName turns a user's image name into the fully qualified form
// podman records: a registry host ("docker.io" when the first component is
// not a host; "library/" for docker.io's one-component names) and a tag
// (":latest" when neither a tag nor a digest is given).
func NormalizeName(s string) (string, error) {
	if s == "" || strings.Contains(s, "://") {
		return "", fmt.Errorf("image name %q: %w", s, source.ErrBadReference)
	}
	host, rest, ok := strings.Cut(s, "/")
	if !ok || (!strings.ContainsAny(host, ".:") && host != "localhost") {
		host, rest = "docker.io", s
	}
	if host == "index.docker.io" {
		host = "docker.io"
	}
	if host == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	last := rest[strings.LastIndex(rest, "/")+1:]
	if !strings.ContainsAny(last, ":@") {
		rest += ":latest"
	}
	out := host + "/" + rest
	if _, err := name.ParseReference(out, name.StrictValidation); err != nil {
		return "", fmt.Errorf("image name %q: %w: %w", s, err, source.ErrBadReference)
	}
	return out, nil
}
