package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"

	"github.com/stowage/stowage/source"
)

var bg = context.Background()

// serve starts an in-process registry on 127.0.0.1 (plain HTTP), with
// basic auth when user is set, and returns its host:port.
func serve(t *testing.T, user, pass string) string {
	t.Helper()
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if user != "" {
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
				w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func push(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func readAll(t *testing.T, src *Source, l source.Layer) []byte {
	t.Helper()
	rc, err := src.Blob(bg, l)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestRegistryImage(t *testing.T) {
	host := serve(t, "", "")
	img, _ := random.Image(3000, 2)
	push(t, host+"/app:v1", img)
	src, err := Open(host+"/app:v1", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.Image(bg)
	if err != nil {
		t.Fatalf("Image: %v", err)
	}
	md, _ := img.Digest()
	cfg, _ := img.ConfigName()
	if got.ManifestDigest.String() != md.String() || got.ConfigDigest.String() != cfg.String() || len(got.Layers) != 2 {
		t.Fatalf("image %+v", got)
	}
	if len(got.Names) != 1 || got.Names[0] != host+"/app:v1" {
		t.Errorf("names %v", got.Names)
	}
	for _, l := range got.Layers {
		if digest.FromBytes(readAll(t, src, l)) != l.Digest {
			t.Errorf("blob %s content differs", l.Digest)
		}
	}
	// By digest too.
	bySum, _ := Open(host+"/app@"+md.String(), Options{})
	if _, err := bySum.Image(bg); err != nil {
		t.Fatalf("by digest: %v", err)
	}
	missing, _ := Open(host+"/nope:v1", Options{})
	if _, err := missing.Image(bg); err == nil {
		t.Fatal("a missing repository resolved")
	}
}

func TestRegistryIndex(t *testing.T) {
	host := serve(t, "", "")
	amd, _ := random.Image(1000, 1)
	arm, _ := random.Image(1000, 1)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	r, _ := name.ParseReference(host+"/multi:1", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	src, _ := Open(host+"/multi:1", Options{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}})
	got, err := src.Image(bg)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := arm.Digest()
	idxDigest, _ := idx.Digest()
	if got.ManifestDigest.String() != want.String() || got.IndexDigest.String() != idxDigest.String() {
		t.Fatalf("picked %s from %s, want %s", got.ManifestDigest, got.IndexDigest, want)
	}
	src, _ = Open(host+"/multi:1", Options{Platform: v1.Platform{OS: "linux", Architecture: "riscv64"}})
	if _, err := src.Image(bg); !errors.Is(err, source.ErrNoPlatform) {
		t.Fatalf("missing platform: %v", err)
	}
}

// Credentials come from an auth.json ($REGISTRY_AUTH_FILE, the format of
// containers' auth.json and docker's config.json).
func TestRegistryBasicAuth(t *testing.T) {
	host := serve(t, "alice", "s3cret")
	img, _ := random.Image(1000, 1)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	push(t, host+"/private:1", img, remote.WithAuth(&basic{"alice", "s3cret"}))

	src, _ := Open(host+"/private:1", Options{})
	if _, err := src.Image(bg); !errors.Is(err, source.ErrUnauthorized) {
		t.Fatalf("without credentials: %v, want ErrUnauthorized", err)
	}
	auth := filepath.Join(home, "auth.json")
	enc := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	if err := os.WriteFile(auth, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, enc)), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("REGISTRY_AUTH_FILE", auth)
	src, _ = Open(host+"/private:1", Options{})
	got, err := src.Image(bg)
	if err != nil {
		t.Fatalf("with auth.json: %v", err)
	}
	readAll(t, src, got.Layers[0])

	// podman's login file is found behind a docker config.json that does
	// not know the registry; and --authfile reads just one file.
	t.Setenv("REGISTRY_AUTH_FILE", "")
	os.MkdirAll(filepath.Join(home, ".docker"), 0o700)
	os.WriteFile(filepath.Join(home, ".docker", "config.json"), []byte(`{"auths":{}}`), 0o600)
	os.MkdirAll(filepath.Join(home, ".config", "containers"), 0o700)
	os.Rename(auth, filepath.Join(home, ".config", "containers", "auth.json"))
	src, _ = Open(host+"/private:1", Options{})
	if _, err := src.Image(bg); err != nil {
		t.Fatalf("with ~/.config/containers/auth.json behind docker's config.json: %v", err)
	}
	src, _ = Open(host+"/private:1", Options{Keychain: FileKeychain(filepath.Join(home, "missing.json"))})
	if _, err := src.Image(bg); !errors.Is(err, source.ErrUnauthorized) || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("an authfile without the registry: %v, want ErrUnauthorized naming the file", err)
	}
}

type basic struct{ user, pass string }

func (b *basic) Authorization() (*authn.AuthConfig, error) {
	return &authn.AuthConfig{Username: b.user, Password: b.pass}, nil
}

func TestIsLocal(t *testing.T) {
	for ref, want := range map[string]bool{
		"localhost/a":        true,
		"localhost:5000/a":   true,
		"127.0.0.1:5000/a:b": true,
		"[::1]:5000/a":       true,
		"quay.io/a/b":        false,
		"10.0.0.1:5000/a":    false,
		"myreg:5000/a":       false,
	} {
		if got := isLocal(ref, nil); got != want {
			t.Errorf("isLocal(%q) = %v", ref, got)
		}
	}
	if !isLocal("myreg:5000/a", []string{"myreg:5000"}) {
		t.Error("an --insecure-registry host is not local")
	}
}

// A registry that serves a blob whose bytes do not match its digest: the
// read fails with ErrDigestMismatch.
func TestRegistryCorruptBlob(t *testing.T) {
	img, _ := random.Image(3000, 1)
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	h := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+ld.String()) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if len(body) > 100 {
			body[100] ^= 0xff
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push(t, host+"/bad:1", img)
	src, _ := Open(host+"/bad:1", Options{})
	got, err := src.Image(bg)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := src.Blob(bg, got.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, source.ErrDigestMismatch) {
		t.Fatalf("corrupt blob read: %v, want ErrDigestMismatch", err)
	}
}

// The auth files are searched in containers/image's order, the first with
// credentials for the repository winning; $REGISTRY_AUTH_FILE replaces
// the search.
func TestAuthFileOrder(t *testing.T) {
	home := t.TempDir()
	run := filepath.Join(home, "run")
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("XDG_RUNTIME_DIR", run)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	primary := filepath.Join(run, "containers", "auth.json")
	config := filepath.Join(home, ".config", "containers", "auth.json")
	docker := filepath.Join(home, ".docker", "config.json")
	if got, want := AuthFiles(), []string{primary, config, docker, filepath.Join(home, ".dockercfg")}; !slices.Equal(got, want) {
		t.Fatalf("AuthFiles() = %v, want %v", got, want)
	}
	entry := func(user string) string {
		return fmt.Sprintf(`{"auth":%q}`, base64.StdEncoding.EncodeToString([]byte(user+":pw")))
	}
	write := func(path, auths string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(`{"auths":{`+auths+`}}`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	user := func(ref string) string {
		t.Helper()
		r, err := name.ParseReference(ref)
		if err != nil {
			t.Fatal(err)
		}
		a, err := DefaultKeychain().Resolve(r.Context())
		if err != nil {
			t.Fatal(err)
		}
		if a == authn.Anonymous {
			return "anonymous"
		}
		c, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		return c.Username
	}
	write(docker, `"reg.example:5000":`+entry("docker")+`,"https://old.example/v1/":`+entry("legacy")+
		`,"https://index.docker.io/v1/":`+entry("hub")+`,"ns.example":`+entry("docker-ns"))
	write(config, `"reg.example:5000":`+entry("config")+`,"ns.example":{}`)
	write(primary, `"reg.example:5000/team":`+entry("team")+`,"reg.example:5000/team/app":`+entry("app"))
	for ref, want := range map[string]string{
		"reg.example:5000/team/app:1": "app",       // the most specific key
		"reg.example:5000/team/x:1":   "team",      // a namespace key
		"reg.example:5000/other:1":    "config",    // the first file with the host
		"old.example/a:1":             "legacy",    // a key with scheme and path
		"alpine:latest":               "hub",       // Docker Hub's legacy key
		"ns.example/a:1":              "docker-ns", // an empty entry does not stop the search
		"nobody.example/a:1":          "anonymous",
	} {
		if got := user(ref); got != want {
			t.Errorf("%s: credentials of %s, want %s", ref, got, want)
		}
	}
	only := filepath.Join(home, "only.json")
	write(only, `"docker.io":`+entry("only"))
	t.Setenv("REGISTRY_AUTH_FILE", only)
	if got := user("reg.example:5000/team/app:1"); got != "anonymous" {
		t.Errorf("with $REGISTRY_AUTH_FILE, other files still gave %s", got)
	}
	if got := user("docker.io/library/alpine:latest"); got != "only" {
		t.Errorf("docker.io key: got %s", got)
	}
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	if got := AuthFiles()[0]; got != fmt.Sprintf("/run/containers/%d/auth.json", os.Getuid()) {
		t.Errorf("without XDG_RUNTIME_DIR the first file is %s", got)
	}
}
