package deps

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/stowage/stowage"

// level gives each package its place in the layering: a package may import
// only module packages of a strictly lower level. New packages must be
// added here, which is the point: the edge is a design decision.
var level = map[string]int{
	"internal/idmap":    0,
	"internal/fsx":      0,
	"internal/testutil": 0,
	"internal/deps":     0,
	"lockfile":          0,
	"tarsplit":          0,
	"source":            0,
	"examples/mkimage":  0,
	"source/ocilayout":  1,
	"source/registry":   1,
	"source/archive":    2,
	"staging":           1,
	"archive":           1,
	"driver":            2,
	"internal/table":    2,
	"driver/vfs":        3,
	"driver/overlay":    3,
	"driver/drivertest": 3,
	"layer":             3,
	"image":             3,
	"container":         3,
	"driver/register":   4,
	"store":             5,
	"config":            6,
	"push":              6,
	"pull":              6,
	"cmd/stowage":       7,

	// test helper programs (standard library only)
	"tests/fault/cmd/faultkit": 8,
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func TestImportDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		name := rel(p.ImportPath)
		from, ok := level[name]
		if !ok {
			t.Errorf("package %s has no level in internal/deps: add it deliberately", name)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			to, ok := level[rel(imp)]
			if !ok {
				continue // reported when that package itself is visited
			}
			if to >= from {
				t.Errorf("%s (level %d) imports %s (level %d): imports must point to lower levels", name, from, rel(imp), to)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list found only %d packages", seen)
	}
}

func TestLevelCatchesUpwardImport(t *testing.T) {
	// The table itself must make the rule bite: nothing below store may import it.
	for _, low := range []string{"layer", "image", "container", "driver", "driver/vfs", "archive", "lockfile", "internal/table"} {
		if level[low] >= level["store"] {
			t.Errorf("%s must sit below store", low)
		}
	}
}

func rel(importPath string) string {
	return strings.TrimPrefix(strings.TrimPrefix(importPath, module), "/")
}
