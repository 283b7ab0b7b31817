package registry

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stowage/stowage/source"
)

// authHome points every auth file location into a fresh $HOME and
// returns it with docker's config.json and the legacy ~/.dockercfg paths.
func authHome(t *testing.T) (home, docker, legacy string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(home, "run"))
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	docker = filepath.Join(home, ".docker", "config.json")
	if err := os.MkdirAll(filepath.Dir(docker), 0o700); err != nil {
		t.Fatal(err)
	}
	return home, docker, filepath.Join(home, ".dockercfg")
}

func authEntry(user, pass string) string {
	return fmt.Sprintf(`{"auth":%q,"email":"%s@example.com"}`, base64.StdEncoding.EncodeToString([]byte(user+":"+pass)), user)
}

// resolveUser resolves ref with the default keychain: the user name, or
// "anonymous".
func resolveUser(t *testing.T, ref string) (string, error) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	a, err := DefaultKeychain().Resolve(r.Context())
	if err != nil {
		return "", err
	}
	if a == authn.Anonymous {
		return "anonymous", nil
	}
	c, err := a.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	return c.Username + ":" + c.Password, nil
}

// fakeHelper installs docker-credential-NAME in a directory put first in
// $PATH. It answers "get" from creds (server -> "user secret"), prints
// docker's not-found text for other servers, fails outright for the
// server "broken.example", and logs every server it was asked for.
func fakeHelper(t *testing.T, helperName string, creds map[string]string) (asked func() []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logf := filepath.Join(dir, helperName+".log")
	var cases strings.Builder
	for server, up := range creds {
		u, p, _ := strings.Cut(up, " ")
		fmt.Fprintf(&cases, "%s) printf '{\"ServerURL\":\"%%s\",\"Username\":\"%s\",\"Secret\":\"%s\"}\\n' \"$server\" ;;\n", server, u, p)
	}
	script := fmt.Sprintf(`#!/bin/sh
[ "$1" = get ] || { echo "unsupported: $1"; exit 1; }
read -r server
echo "$server" >>%q
case "$server" in
%sbroken.example) echo "the keychain is locked"; exit 1 ;;
*) echo "credentials not found in native keychain"; exit 1 ;;
esac
`, logf, cases.String())
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-"+helperName), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() []string {
		b, _ := os.ReadFile(logf)
		_ = os.Remove(logf)
		return strings.Fields(string(b))
	}
}

// The legacy ~/.dockercfg is searched last, by host only, with docker.io's
// URL key; $REGISTRY_AUTH_FILE stops the search before it.
func TestLegacyDockercfg(t *testing.T) {
	home, docker, legacy := authHome(t)
	if files := AuthFiles(); files[len(files)-1] != legacy {
		t.Fatalf("AuthFiles() = %v, want ~/.dockercfg last", files)
	}
	if err := os.WriteFile(legacy, []byte(`{"https://index.docker.io/v1/":`+authEntry("hub", "h")+
		`,"old.example:5000":`+authEntry("old", "o")+`,"both.example":`+authEntry("legacy", "l")+
		`,"ns.example/team":`+authEntry("ns", "n")+`,"bad.example":{"auth":"bm9jb2xvbg=="}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(docker, []byte(`{"auths":{"both.example":`+authEntry("docker", "d")+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{
		"alpine:latest":            "hub:h",
		"old.example:5000/a/b:1":   "old:o",
		"both.example/a:1":         "docker:d",  // config.json comes first
		"ns.example/team/app:1":    "anonymous", // no namespaced keys in the legacy file
		"bad.example/a:1":          "anonymous", // "nocolon": no user:password
		"elsewhere.example/a:1":    "anonymous",
		"docker.io/library/app:v1": "hub:h",
	} {
		got, err := resolveUser(t, ref)
		if err != nil || got != want {
			t.Errorf("%s: %s, %v; want %s", ref, got, err, want)
		}
	}
	only := filepath.Join(home, "only.json")
	if err := os.WriteFile(only, []byte(`{"auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REGISTRY_AUTH_FILE", only)
	if got, err := resolveUser(t, "alpine:latest"); err != nil || got != "anonymous" {
		t.Errorf("with $REGISTRY_AUTH_FILE the legacy file still gave %s, %v", got, err)
	}
	t.Setenv("REGISTRY_AUTH_FILE", "")
	if err := os.WriteFile(legacy, []byte(`{"auths":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveUser(t, "alpine:latest"); err == nil || !strings.Contains(err.Error(), legacy) {
		t.Errorf("a malformed ~/.dockercfg: %v, want an error naming it", err)
	}
}

// credHelpers and docker's global credsStore run docker-credential-NAME
// with the server on stdin.
func TestCredentialHelpers(t *testing.T) {
	_, docker, legacy := authHome(t)
	store := fakeHelper(t, "xyz", map[string]string{
		"reg.example:5000":            "store s1",
		"https://index.docker.io/v1/": "storehub s2",
	})
	per := fakeHelper(t, "per", map[string]string{"per.example": "per p1"})
	if err := os.WriteFile(docker, []byte(`{"credsStore":"xyz","credHelpers":{"per.example":"per","empty.example":"per"},`+
		`"auths":{"reg.example:5000":{},"file.example":`+authEntry("file", "f")+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(legacy, []byte(`{"empty.example":`+authEntry("legacy", "l")+`,"nostore.example":`+authEntry("legacy", "l")+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ref, want         string
		storeAsk, perAsks []string
	}{
		{"reg.example:5000/a:1", "store:s1", []string{"reg.example:5000"}, nil},
		{"alpine:latest", "storehub:s2", []string{"https://index.docker.io/v1/"}, nil},
		// a per-registry helper decides alone; credsStore is not asked
		{"per.example/a:1", "per:p1", nil, []string{"per.example"}},
		// a per-registry helper without credentials: the next file
		{"empty.example/a:1", "legacy:l", nil, []string{"empty.example"}},
		// credsStore without credentials: the file's own entry, then the next file
		{"file.example/a:1", "file:f", []string{"file.example"}, nil},
		{"nostore.example/a:1", "legacy:l", []string{"nostore.example"}, nil},
		{"none.example/a:1", "anonymous", []string{"none.example"}, nil},
	} {
		got, err := resolveUser(t, tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("%s: %s, %v; want %s", tc.ref, got, err, tc.want)
		}
		if a := store(); !slices.Equal(a, tc.storeAsk) {
			t.Errorf("%s: credsStore asked for %q, want %q", tc.ref, a, tc.storeAsk)
		}
		if a := per(); !slices.Equal(a, tc.perAsks) {
			t.Errorf("%s: credHelpers asked for %q, want %q", tc.ref, a, tc.perAsks)
		}
	}
	// A failing helper is an error naming the file and the helper.
	_, err := resolveUser(t, "broken.example/a:1")
	if err == nil || !strings.Contains(err.Error(), docker) || !strings.Contains(err.Error(), "xyz") || !strings.Contains(err.Error(), "locked") {
		t.Errorf("failing credsStore: %v, want an error naming %s and xyz", err, docker)
	}
	// A credsStore whose helper is not installed (a config.json copied
	// from a desktop) is skipped, as podman never asks it.
	if err := os.WriteFile(docker, []byte(`{"credsStore":"not-installed-here","auths":{"file.example":`+authEntry("file", "f")+`}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := resolveUser(t, "file.example/a:1"); err != nil || got != "file:f" {
		t.Errorf("missing credsStore helper: %s, %v; want file:f", got, err)
	}
	if got, err := resolveUser(t, "none.example/a:1"); err != nil || got != "anonymous" {
		t.Errorf("missing credsStore helper: %s, %v; want anonymous", got, err)
	}
}

// End to end: a pull authenticates with credentials from a credsStore
// helper and from ~/.dockercfg.
func TestRegistryAuthFromHelperAndLegacy(t *testing.T) {
	host := serve(t, "alice", "s3cret")
	img, _ := random.Image(1000, 1)
	push(t, host+"/private:1", img, remote.WithAuth(&basic{"alice", "s3cret"}))
	_, docker, legacy := authHome(t)
	pull := func() error {
		src, err := Open(host+"/private:1", Options{})
		if err != nil {
			return err
		}
		_, err = src.Image(bg)
		return err
	}
	if err := pull(); !errors.Is(err, source.ErrUnauthorized) || !strings.Contains(err.Error(), legacy) {
		t.Fatalf("without credentials: %v, want ErrUnauthorized naming %s", err, legacy)
	}
	if err := os.WriteFile(legacy, []byte(`{"`+host+`":`+authEntry("alice", "s3cret")+`}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pull(); err != nil {
		t.Fatalf("with ~/.dockercfg: %v", err)
	}
	if err := os.Remove(legacy); err != nil {
		t.Fatal(err)
	}
	asked := fakeHelper(t, "xyz", map[string]string{host: "alice s3cret"})
	if err := os.WriteFile(docker, []byte(`{"credsStore":"xyz"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pull(); err != nil {
		t.Fatalf("with credsStore: %v", err)
	}
	if a := asked(); len(a) == 0 || a[0] != host {
		t.Errorf("credsStore asked for %q, want %s", a, host)
	}
}
