package registry

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// AuthFiles lists the credential files in the order containers/image
// (podman, skopeo) searches them: $REGISTRY_AUTH_FILE alone when it is set;
// else ${XDG_RUNTIME_DIR}/containers/auth.json (/run/containers/<uid>/auth.json
// without XDG_RUNTIME_DIR), ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json,
// then docker's ${DOCKER_CONFIG:-~/.docker}/config.json. The legacy
// ~/.dockercfg is not read.
func AuthFiles() []string {
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		return []string{f}
	}
	var files []string
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	} else {
		files = append(files, fmt.Sprintf("/run/containers/%d/auth.json", os.Getuid()))
	}
	home, _ := os.UserHomeDir()
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" && home != "" {
		cfg = filepath.Join(home, ".config")
	}
	if cfg != "" {
		files = append(files, filepath.Join(cfg, "containers", "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, filepath.Join(d, "config.json"))
	} else if home != "" {
		files = append(files, filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// fileKeychain reads credentials from auth files (the format of
// containers' auth.json and docker's config.json), the first file with an
// entry for the repository winning. A missing file is skipped; no entry
// anywhere is anonymous.
type fileKeychain struct{ paths []string }

// Resolve looks target up the way containers/image does: the keys
// HOST/NS/REPO, HOST/NS, ..., HOST in each file (docker.io for Docker
// Hub), then its keys with any scheme and path removed ("https://HOST/v1/").
// A credential helper the file names for HOST (credHelpers) is asked.
func (k fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	host := target.RegistryStr()
	if host == name.DefaultRegistry {
		host = "docker.io"
	}
	var keys []string // most specific first
	if r, ok := target.(name.Repository); ok {
		for p := host + "/" + r.RepositoryStr(); p != host; p = p[:strings.LastIndex(p, "/")] {
			keys = append(keys, p)
		}
	}
	keys = append(keys, host)
	for _, path := range k.paths {
		cf, err := loadAuthFile(path)
		if err != nil {
			return nil, err
		}
		if cf == nil {
			continue
		}
		if a, ok, err := lookup(cf, host, keys); err != nil {
			return nil, fmt.Errorf("credentials for %s from %s: %w", host, path, err)
		} else if ok {
			return a, nil
		}
	}
	return authn.Anonymous, nil
}

// loadAuthFile parses path; nil for a missing file.
func loadAuthFile(path string) (*configfile.ConfigFile, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cf, err := config.LoadFromReader(f)
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	return cf, nil
}

// lookup finds the credentials for keys (most specific first) in cf; an
// entry without a user and password or identity token does not count.
func lookup(cf *configfile.ConfigFile, host string, keys []string) (authn.Authenticator, bool, error) {
	var ac authn.AuthConfig
	if _, ok := cf.CredentialHelpers[host]; ok {
		c, err := cf.GetAuthConfig(host)
		if err != nil {
			return nil, false, err
		}
		ac = authn.AuthConfig{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken}
	} else {
		found := false
		for _, key := range keys {
			if c, ok := cf.AuthConfigs[key]; ok {
				ac = authn.AuthConfig{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}
				found = true
				break
			}
		}
		if !found {
			for key, c := range cf.AuthConfigs {
				if normalizeHost(key) == normalizeHost(host) {
					ac = authn.AuthConfig{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}
					break
				}
			}
		}
	}
	if (ac.Username == "" || ac.Password == "") && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return nil, false, nil
	}
	return authn.FromConfig(ac), true, nil
}

// normalizeHost reduces an auth file key given as a URL
// ("https://index.docker.io/v1/") to its host, with Docker Hub's names
// made one; a key without a scheme keeps its path.
func normalizeHost(key string) string {
	if k := strings.TrimPrefix(strings.TrimPrefix(key, "http://"), "https://"); k != key {
		key, _, _ = strings.Cut(k, "/")
	}
	switch key {
	case "docker.io", "registry-1.docker.io":
		return name.DefaultRegistry
	}
	return key
}

// DefaultKeychain searches AuthFiles, as podman and skopeo do.
func DefaultKeychain() authn.Keychain { return fileKeychain{AuthFiles()} }

// FileKeychain reads credentials only from path (podman's --authfile).
func FileKeychain(path string) authn.Keychain { return fileKeychain{[]string{path}} }
