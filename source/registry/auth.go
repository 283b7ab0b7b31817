package registry

import (
	"os"
	"path/filepath"

	"github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/authn"
)

// fileKeychain reads credentials from one auth.json file (the format of
// containers' auth.json and docker's config.json). A missing file or a
// registry without an entry is anonymous.
type fileKeychain struct{ path string }

// Resolve looks the registry up by host ("127.0.0.1:5000", "quay.io").
func (k fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	f, err := os.Open(k.path)
	if err != nil {
		if os.IsNotExist(err) {
			return authn.Anonymous, nil
		}
		return nil, err
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, err
	}
	for _, key := range []string{target.String(), target.RegistryStr()} {
		ac, ok := cf.AuthConfigs[key]
		if !ok {
			continue
		}
		return authn.FromConfig(authn.AuthConfig{
			Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
			IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
		}), nil
	}
	return authn.Anonymous, nil
}

// DefaultKeychain is go-containerregistry's default keychain (docker's
// config.json, else $REGISTRY_AUTH_FILE or the first containers auth.json
// found), then both containers auth.json locations, so a docker
// config.json without the registry does not hide podman's login.
func DefaultKeychain() authn.Keychain {
	chain := []authn.Keychain{authn.DefaultKeychain}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		chain = append(chain, fileKeychain{filepath.Join(d, "containers", "auth.json")})
	}
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if home, err := os.UserHomeDir(); cfg == "" && err == nil {
		cfg = filepath.Join(home, ".config")
	}
	if cfg != "" {
		chain = append(chain, fileKeychain{filepath.Join(cfg, "containers", "auth.json")})
	}
	return authn.NewMultiKeychain(chain...)
}

// FileKeychain reads credentials only from path (podman's --authfile).
func FileKeychain(path string) authn.Keychain { return fileKeychain{path} }
