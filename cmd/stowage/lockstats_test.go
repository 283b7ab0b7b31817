package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// Each command appends its lock statistics to $STOWAGE_LOCK_STATS;
// lock-stats sums them per lock; --debug logs them and long holds.
func TestLockStatistics(t *testing.T) {
	s := newStoreCLI(t)
	file := filepath.Join(t.TempDir(), "locks.jsonl")
	t.Setenv(lockStatsEnv, file)
	s.ok("", "create-layer")
	s.ok("", "layers")
	var got lockStatsJSON
	if err := json.Unmarshal([]byte(s.ok("", "lock-stats", "-j")), &got); err != nil {
		t.Fatal(err)
	}
	if got.Records < 2 || got.File != file {
		t.Fatalf("lock-stats read %d records from %s", got.Records, got.File)
	}
	layersLock := filepath.Join(s.graph, "vfs-layers", "layers.lock")
	found := false
	for _, l := range got.Locks {
		if l.Path == layersLock {
			found = true
			if l.Processes < 2 || l.Locks < 1 || l.Held <= 0 {
				t.Errorf("layers.lock summary %+v", l)
			}
		}
	}
	if !found {
		t.Fatalf("layers.lock missing from %+v", got.Locks)
	}
	table := s.ok("", "lock-stats", file)
	if !strings.HasPrefix(table, "LOCK") || !strings.Contains(table, layersLock) || !strings.Contains(table, "processes;") {
		t.Errorf("table:\n%s", table)
	}

	t.Setenv(lockThresholdEnv, "0s")
	var out, errOut bytes.Buffer
	argv := []string{"stowage", "--debug", "--graph", s.graph, "--run", s.run, "--storage-driver", "vfs", "layers"}
	if code := runCLI(context.Background(), argv, &cliIO{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut}); code != 0 {
		t.Fatalf("layers --debug: %d %s", code, errOut.String())
	}
	for _, want := range []string{`msg="long lock hold" lock=` + layersLock, `msg="lock statistics" lock=` + layersLock} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("--debug output lacks %q:\n%s", want, errOut.String())
		}
	}

	t.Setenv(lockStatsEnv, "")
	if code, _, errOut := s.do("", "lock-stats"); code != 1 || !strings.Contains(errOut, lockStatsEnv) {
		t.Errorf("lock-stats without a file: %d %q", code, errOut)
	}
}
