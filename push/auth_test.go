package push

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/stowage/stowage/source"
)

// authRegistry serves an in-process registry that wants basic auth as
// alice:s3cret and refuses (403) every write by "reader".
func authRegistry(t *testing.T) string {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		switch {
		case ok && u == "reader" && p == "r" && r.Method != http.MethodGet && r.Method != http.MethodHead:
			w.WriteHeader(http.StatusForbidden)
			return
		case ok && (u == "alice" && p == "s3cret" || u == "reader" && p == "r"):
			inner.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// A push the registry refuses (401: no or wrong credentials; 403: not
// allowed to write) is source.ErrUnauthorized naming the auth files, as a
// refused pull is; Options.AuthFile replaces the search.
func TestPushUnauthorized(t *testing.T) {
	f := newFixture(t, true)
	ctx := testCtx(t)
	host := authRegistry(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", "")
	t.Setenv("XDG_RUNTIME_DIR", filepath.Join(home, "run"))
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("REGISTRY_AUTH_FILE", "")
	d, err := ParseDestination("docker://" + host + "/test/img:1")
	if err != nil {
		t.Fatal(err)
	}
	authFile := func(user, pass string) string {
		p := filepath.Join(t.TempDir(), "auth.json")
		enc := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
		if err := os.WriteFile(p, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, enc)), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	push := func(opts Options) error {
		opts.TempDir = t.TempDir()
		_, err := Push(ctx, f.st, f.imageID, d, opts)
		return err
	}
	for _, tc := range []struct {
		name  string
		opts  Options
		env   string // $REGISTRY_AUTH_FILE
		names []string
	}{
		{"anonymous", Options{}, "", []string{filepath.Join(home, "run", "containers", "auth.json"), filepath.Join(home, ".dockercfg")}},
		{"wrong password", Options{AuthFile: authFile("alice", "wrong")}, "", nil},
		{"403 on write", Options{}, authFile("reader", "r"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("REGISTRY_AUTH_FILE", tc.env)
			names := tc.names
			if tc.opts.AuthFile != "" {
				names = []string{tc.opts.AuthFile}
			}
			if tc.env != "" {
				names = []string{tc.env}
			}
			err := push(tc.opts)
			if !errors.Is(err, source.ErrUnauthorized) {
				t.Fatalf("push: %v, want source.ErrUnauthorized", err)
			}
			for _, n := range names {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error %q does not name %s", err, n)
				}
			}
			if !strings.Contains(err.Error(), host) {
				t.Errorf("error %q does not name the registry", err)
			}
		})
	}
	if err := push(Options{AuthFile: authFile("alice", "s3cret")}); err != nil {
		t.Fatalf("with credentials: %v", err)
	}
	// Other failures are not mistaken for auth: a registry that is gone.
	d2, _ := ParseDestination("docker://127.0.0.1:1/test/img:1")
	if _, err := Push(ctx, f.st, f.imageID, d2, Options{TempDir: t.TempDir()}); err == nil || errors.Is(err, source.ErrUnauthorized) {
		t.Errorf("unreachable registry: %v", err)
	}
}
