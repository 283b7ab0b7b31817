package lockfile

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestWaitLockWaitsForTheHolderAndHonoursCtx(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	h, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	var lwe *LockWaitError
	if _, err := WaitLock(ctx, p); !errors.As(err, &lwe) || !errors.Is(lwe.Err, context.DeadlineExceeded) {
		t.Fatalf("WaitLock on a held lock with an expiring ctx: %v, want a *LockWaitError", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_ = h.Remove() // released (and unlinked) while the waiter polls
	}()
	h2, err := WaitLock(context.Background(), p)
	if err != nil {
		t.Fatalf("WaitLock after the holder let go: %v", err)
	}
	if err := h2.Remove(); err != nil {
		t.Fatal(err)
	}
}
