package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stowage/stowage/internal/idmap"
	"github.com/stowage/stowage/lockfile"
)

// CreateContainer with ID mappings waits for G/userns.lock (spec §7.3);
// one without mappings does not take it.
func TestCreateContainerWithMapsHoldsUsernsLock(t *testing.T) {
	s, opts := openTest(t)
	ctx := testCtx(t)
	lk, err := lockfile.Get(filepath.Join(opts.GraphRoot, "userns.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if err := lk.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			lk.Unlock()
		}
	}()

	if _, err := s.CreateContainer(ctx, ContainerOptions{}); err != nil {
		t.Fatalf("a container without mappings must not wait for userns.lock: %v", err)
	}

	maps := []idmap.IDMap{{ContainerID: 0, HostID: 100000, Size: 65536}}
	done := make(chan error, 1)
	go func() { // owned by this test: it waits on done below
		_, err := s.CreateContainer(ctx, ContainerOptions{IDMapping: IDMappingOptions{UIDMap: maps, GIDMap: maps}})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("CreateContainer with mappings finished while userns.lock was held (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	lk.Unlock()
	locked = false
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("CreateContainer with mappings: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("CreateContainer with mappings still waiting after userns.lock was released")
	}
}
