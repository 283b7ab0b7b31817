// Package registry reads images from container registries through
// go-containerregistry's remote client: anonymous or basic/token auth
// from the auth files podman and skopeo read, in their order (AuthFiles),
// plain HTTP for localhost and 127.0.0.1
// (and for hosts listed in Options.Insecure), TLS for everything else.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/source"
)

// Options configure Open. The zero value uses the default keychain and the
// running platform.
type Options struct {
	Platform v1.Platform    // zero: linux on runtime.GOARCH
	Keychain authn.Keychain // nil: DefaultKeychain()
	// Insecure lists extra registry hosts ("host:port") reached over HTTP.
	Insecure []string
}

// Source is an image in a registry.
type Source struct {
	ref  name.Reference
	opts Options
}

// Open parses ref ("HOST/REPO:TAG" or "HOST/REPO@sha256:...", without the
// docker:// prefix). Nothing is fetched until Image.
func Open(ref string, opts Options) (*Source, error) {
	ref = strings.TrimPrefix(ref, "//")
	var nopts []name.Option
	if isLocal(ref, opts.Insecure) {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("registry reference %q: %w: %w", ref, err, source.ErrBadReference)
	}
	if opts.Platform.OS == "" {
		opts.Platform = source.DefaultPlatform()
	}
	if opts.Keychain == nil {
		opts.Keychain = DefaultKeychain()
	}
	return &Source{ref: r, opts: opts}, nil
}

// isLocal reports whether ref's host is a loopback name or listed.
func isLocal(ref string, insecure []string) bool {
	host, _, _ := strings.Cut(ref, "/")
	for _, h := range insecure {
		if h == host {
			return true
		}
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Close does nothing: connections are pooled by the HTTP client.
func (s *Source) Close() error { return nil }

func (s *Source) remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(s.opts.Keychain)}
}

// Image fetches the manifest (through an index for the platform) and the
// config, checking both against their digests.
func (s *Source) Image(ctx context.Context) (*source.Image, error) {
	desc, err := remote.Get(s.ref, s.remoteOpts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.ref, s.mapAuthErr(err))
	}
	img := &source.Image{}
	raw, mt, dg := desc.Manifest, string(desc.MediaType), digest.Digest(desc.Digest.String())
	if source.IsIndex(mt, raw) {
		img.Index, img.IndexDigest = raw, dg
		child, err := source.SelectManifest(raw, s.opts.Platform)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.ref, err)
		}
		desc, err = remote.Get(s.ref.Context().Digest(child.Digest.String()), s.remoteOpts(ctx)...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.ref, s.mapAuthErr(err))
		}
		raw, mt, dg = desc.Manifest, string(desc.MediaType), digest.Digest(desc.Digest.String())
	}
	if err := source.CheckDigest(fmt.Sprintf("%s: manifest", s.ref), raw, dg); err != nil {
		return nil, err
	}
	img.Manifest, img.ManifestDigest = raw, dg
	mt, cfg, layers, err := source.ParseManifest(raw, mt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.ref, err)
	}
	img.ManifestMediaType, img.Layers = mt, layers
	img.ConfigDigest = digest.Digest(cfg.Digest.String())
	if img.Config, err = s.readBlob(ctx, img.ConfigDigest); err != nil {
		return nil, fmt.Errorf("%s: config: %w", s.ref, err)
	}
	if err := source.CheckDigest(fmt.Sprintf("%s: config", s.ref), img.Config, img.ConfigDigest); err != nil {
		return nil, err
	}
	if err := source.AttachDiffIDs(img.Config, img.Layers); err != nil {
		return nil, fmt.Errorf("%s: %w", s.ref, err)
	}
	if t, ok := s.ref.(name.Tag); ok {
		img.Names = []string{t.Name()}
	}
	return img, nil
}

func (s *Source) readBlob(ctx context.Context, d digest.Digest) ([]byte, error) {
	rc, err := s.Blob(ctx, source.Layer{Digest: d})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 16<<20))
}

// Blob streams a blob from the registry.
func (s *Source) Blob(ctx context.Context, l source.Layer) (io.ReadCloser, error) {
	if err := l.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob digest %q: %w: %w", l.Digest, err, source.ErrBadManifest)
	}
	layer, err := remote.Layer(s.ref.Context().Digest(l.Digest.String()), s.remoteOpts(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("%s: blob %s: %w", s.ref.Context(), l.Digest, s.mapAuthErr(err))
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, fmt.Errorf("%s: blob %s: %w", s.ref.Context(), l.Digest, s.mapAuthErr(err))
	}
	return mismatchMapper{rc, l.Digest}, nil
}

// mapAuthErr is AuthError for this source's registry and keychain.
func (s *Source) mapAuthErr(err error) error {
	return AuthError(err, s.opts.Keychain, s.ref.Context().RegistryStr())
}

// AuthError marks err with source.ErrUnauthorized when it is (or wraps) a
// registry's 401 or 403 answer, naming the auth files kc searched for host
// when kc is one of this package's keychains; other errors are returned
// unchanged. Pull and push both use it.
func AuthError(err error, kc authn.Keychain, host string) error {
	var te *transport.Error
	if !errors.As(err, &te) || (te.StatusCode != http.StatusUnauthorized && te.StatusCode != http.StatusForbidden) {
		return err
	}
	where := ""
	if k, ok := kc.(fileKeychain); ok {
		where = fmt.Sprintf(" (credentials for %s were looked for in %s)", host, strings.Join(k.paths(), ", "))
	}
	return fmt.Errorf("%w: %w%s", err, source.ErrUnauthorized, where)
}

// mismatchMapper marks the digest and size check go-containerregistry
// makes at the end of a blob (its error type is internal, so the text is
// matched) with source.ErrDigestMismatch.
type mismatchMapper struct {
	io.ReadCloser
	d digest.Digest
}

func (m mismatchMapper) Read(p []byte) (int, error) {
	n, err := m.ReadCloser.Read(p)
	if err != nil && err != io.EOF && strings.Contains(err.Error(), "error verifying") {
		err = fmt.Errorf("blob %s: %w: %w", m.d, err, source.ErrDigestMismatch)
	}
	return n, err
}
