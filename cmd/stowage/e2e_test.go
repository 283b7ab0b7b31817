package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storeCLI runs commands against one scratch vfs store.
type storeCLI struct {
	t          *testing.T
	graph, run string
}

func newStoreCLI(t *testing.T) *storeCLI {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("store commands: need root for chown in the vfs driver")
	}
	dir := t.TempDir()
	s := &storeCLI{t: t, graph: filepath.Join(dir, "root"), run: filepath.Join(dir, "runroot")}
	code, _, errOut := s.do("", "layers")
	if code != 0 && strings.Contains(errOut, "not implemented") {
		t.Skip("store not implemented yet in this tree")
	}
	if code != 0 {
		t.Fatalf("layers on an empty store: exit %d: %s", code, errOut)
	}
	t.Cleanup(func() { s.do("", "shutdown", "-f") })
	return s
}

// do runs one command with the harness's global flags and returns its
// exit status, stdout and stderr.
func (s *storeCLI) do(stdin string, args ...string) (int, string, string) {
	argv := append([]string{"containers-storage", "--debug=false", "--graph", s.graph, "--run", s.run, "--storage-driver", "vfs"}, args...)
	var out, errOut bytes.Buffer
	code := runCLI(context.Background(), argv, &cliIO{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut})
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and returns its stdout.
func (s *storeCLI) ok(stdin string, args ...string) string {
	s.t.Helper()
	code, out, errOut := s.do(stdin, args...)
	if code != 0 {
		s.t.Fatalf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

func TestStoreCommands(t *testing.T) {
	s := newStoreCLI(t)
	layer := strings.TrimSpace(s.ok("", "create-layer"))
	if layer == "" || strings.ContainsAny(layer, "\t\n") {
		t.Fatalf("create-layer printed %q", layer)
	}
	if got := s.ok("", "layers"); got != layer+"\n" {
		t.Errorf("layers = %q", got)
	}
	named := s.ok("", "create-layer", "-n", "n1", "--name=n2", layer)
	lines := strings.Split(strings.TrimSuffix(named, "\n"), "\n")
	if len(lines) != 3 || lines[1] != "\tn1" || lines[2] != "\tn2" {
		t.Errorf("create-layer with names printed %q", named)
	}
	child := lines[0]
	if out := s.ok("", "layer", child); !strings.Contains(out, "Parent: "+layer+"\n") || !strings.Contains(out, "Name: n1\n") {
		t.Errorf("layer = %q", out)
	}
	if out := s.ok("", "layer", "--json", child); !strings.Contains(out, `"parent":"`+layer+`"`) {
		t.Errorf("layer --json = %q", out)
	}

	img := strings.TrimSpace(s.ok("", "create-image", "-n", "img1", "-m", "meta\n", child))
	img = strings.Split(img, "\n")[0]
	if out := s.ok("", "images", "-q"); out != img+"\n" {
		t.Errorf("images -q = %q", out)
	}
	if out := s.ok("", "metadata", "-q", img); out != "meta\n" {
		t.Errorf("metadata -q = %q", out)
	}
	s.ok("data-bytes", "set-image-data", img, "item")
	if out := s.ok("", "get-image-data-size", img, "item"); out != "10\n" {
		t.Errorf("size = %q", out)
	}
	if out := s.ok("", "list-image-data", img); out != "item\n" {
		t.Errorf("list = %q", out)
	}
	if out := s.ok("", "get-image-data", img, "item"); out != "data-bytes" {
		t.Errorf("get = %q", out)
	}
	if code, out, errOut := s.do("", "get-image-data", "nosuch", "item"); code != 1 || out != "" || !strings.Contains(errOut, "image not known") {
		t.Errorf("unknown image: %d %q %q", code, out, errOut)
	}

	ctr := strings.Split(s.ok("", "create-container", "-n", "c1", img), "\n")[0]
	if out := s.ok("", "containers"); !strings.HasPrefix(out, ctr+"\n\tname: c1\n") {
		t.Errorf("containers = %q", out)
	}
	if out := s.ok("", "exists", "-c", "c1"); out != "c1: true\n" {
		t.Errorf("exists = %q", out)
	}
	if code, out, _ := s.do("", "exists", "-i", "c1"); code != 1 || out != "c1: true\n" {
		t.Errorf("exists -i on a container: %d %q", code, out)
	}
	s.ok("", "add-names", "-n", "c2", ctr)
	if out := s.ok("", "get-names", ctr); out != "c2\nc1\n" { // add-names prepends, as upstream
		t.Errorf("get-names = %q", out)
	}
	if code, _, errOut := s.do("", "delete-image", img); code != 1 || !strings.Contains(errOut, "image is in use by a container") {
		t.Errorf("delete-image in use: %d %q", code, errOut)
	}
	s.ok("", "delete-container", ctr)
	s.ok("", "delete-image", img)
	s.ok("", "wipe")
	if out := s.ok("", "layers"); out != "" {
		t.Errorf("after wipe: layers = %q", out)
	}
	_, _, errOut := s.do("", "status")
	if !strings.HasPrefix(errOut, "Root: "+s.graph+"\nRun Root: "+s.run+"\nDriver Name: vfs\n") {
		t.Errorf("status = %q", errOut)
	}
}
