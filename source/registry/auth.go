package registry

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// AuthFiles lists the credential files in the order containers/image
// (podman, skopeo) searches them: $REGISTRY_AUTH_FILE alone when it is set;
// else ${XDG_RUNTIME_DIR}/containers/auth.json (/run/containers/<uid>/auth.json
// without XDG_RUNTIME_DIR), ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json,
// then docker's ${DOCKER_CONFIG:-~/.docker}/config.json, then the legacy
// ~/.dockercfg (whatever $DOCKER_CONFIG says).
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
	if home != "" {
		files = append(files, filepath.Join(home, legacyName))
	}
	return files
}

// legacyName is docker's pre-1.7 credential file in $HOME: a JSON object
// of registry -> {"auth": base64("user:password"), "email": ...}, with no
// "auths" wrapper and no helpers.
const legacyName = ".dockercfg"

// authFile is one file to search; legacy marks the ~/.dockercfg format.
type authFile struct {
	path   string
	legacy bool
}

// fileKeychain reads credentials from auth files (the format of
// containers' auth.json and docker's config.json), the first file with an
// entry for the repository winning. A missing file is skipped; no entry
// anywhere is anonymous.
type fileKeychain struct{ files []authFile }

// paths lists the files searched, in order.
func (k fileKeychain) paths() []string {
	p := make([]string, len(k.files))
	for i, f := range k.files {
		p[i] = f.path
	}
	return p
}

// Resolve looks target up the way containers/image does: the keys
// HOST/NS/REPO, HOST/NS, ..., HOST in each file (docker.io for Docker
// Hub), then its keys with any scheme and path removed ("https://HOST/v1/").
// A credential helper the file names for HOST (credHelpers) is asked;
// else docker's global credsStore helper, when it is installed (podman and
// skopeo ignore credsStore; docker asks it for every registry), and when it
// has nothing for HOST the file's own entries count. The legacy
// ~/.dockercfg is looked up by host only, as containers/image does.
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
	for _, f := range k.files {
		load, fkeys := loadAuthFile, keys
		if f.legacy {
			load, fkeys = loadLegacyAuthFile, []string{host}
		}
		cf, err := load(f.path)
		if err != nil {
			return nil, err
		}
		if cf == nil {
			continue
		}
		if a, ok, err := lookup(cf, host, fkeys); err != nil {
			return nil, fmt.Errorf("credentials for %s from %s: %w", host, f.path, err)
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
	cf.Filename = path
	return cf, nil
}

// loadLegacyAuthFile parses a ~/.dockercfg; nil for a missing file. An
// "auth" that is not base64 of "user:password" leaves the entry empty.
func loadLegacyAuthFile(path string) (*configfile.ConfigFile, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var entries map[string]struct {
		Auth          string `json:"auth"`
		IdentityToken string `json:"identitytoken"`
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		return nil, fmt.Errorf("auth file %s (legacy format): %w", path, err)
	}
	cf := &configfile.ConfigFile{Filename: path, AuthConfigs: map[string]types.AuthConfig{}}
	for key, e := range entries {
		ac := types.AuthConfig{IdentityToken: e.IdentityToken}
		if raw, err := base64.StdEncoding.DecodeString(e.Auth); err == nil {
			ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
		}
		cf.AuthConfigs[key] = ac
	}
	return cf, nil
}

// helperInstalled reports whether docker-credential-NAME is in $PATH.
func helperInstalled(name string) bool {
	_, err := exec.LookPath("docker-credential-" + name)
	return err == nil
}

// lookup finds the credentials for keys (most specific first) in cf; an
// entry without a user and password or identity token does not count.
// A per-host helper (credHelpers) decides alone; the global credsStore is
// asked first when its helper is installed, then the file's entries.
func lookup(cf *configfile.ConfigFile, host string, keys []string) (authn.Authenticator, bool, error) {
	var ac authn.AuthConfig
	if _, ok := cf.CredentialHelpers[host]; ok {
		c, err := cf.GetAuthConfig(host)
		if err != nil {
			return nil, false, err
		}
		ac = authn.AuthConfig{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken}
	} else {
		if cs := cf.CredentialsStore; cs != "" && !helperInstalled(cs) {
			// Docker would fail every pull here; podman never looks.
			slog.Debug(fmt.Sprintf("%s names credsStore %q, but docker-credential-%s is not in $PATH: not asked", cf.Filename, cs, cs))
		} else if cs != "" {
			c, err := cf.GetAuthConfig(host)
			if err != nil {
				return nil, false, fmt.Errorf("credsStore %s: %w", cs, err)
			}
			if c.Username != "" && c.Password != "" || c.IdentityToken != "" {
				return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password, IdentityToken: c.IdentityToken}), true, nil
			}
		}
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
func DefaultKeychain() authn.Keychain {
	var k fileKeychain
	for _, p := range AuthFiles() {
		k.files = append(k.files, authFile{path: p, legacy: filepath.Base(p) == legacyName && os.Getenv("REGISTRY_AUTH_FILE") == ""})
	}
	return k
}

// FileKeychain reads credentials only from path (podman's --authfile), in
// the auth.json / config.json format.
func FileKeychain(path string) authn.Keychain { return fileKeychain{[]authFile{{path: path}}} }
