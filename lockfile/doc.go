// Package lockfile owns containers-storage-compatible lock files: whole-file
// fcntl record locks (Linux OFD locks, which conflict with the classic POSIX
// locks containers/storage takes), the 64-byte last-writer token, and
// per-process lock wait/hold statistics.
//
// Contract:
//   - Get/GetReadOnly return one *File per cleaned path per process; the
//     file stays open for the life of the process. Lock files are never
//     deleted, renamed or truncated.
//   - Lock/RLock block (honouring ctx) across goroutines and processes;
//     they are not reentrant, and a waiting writer blocks new readers of
//     this process (like sync.RWMutex). Unlock releases the most recent
//     hold. When ctx ends during a wait the error is a *LockWaitError.
//   - RecordWrite pwrites a fresh unique 64-byte token at offset 0 and
//     returns it; the caller must hold the write lock.
//   - LastWrite reads the current token (a short or empty file is a valid
//     token); the caller must hold a lock.
//   - TryLock/TryLockNew take a non-blocking exclusive lock on their own
//     open file description, for temp-dir and staging liveness locks; a
//     second TryLock of the same path fails even in the same process.
//
// Locking: the in-process state of a File is guarded by its own mutex; the
// cross-process OFD lock is taken by the first holder in this process and
// released by the last. Lock order between files is the caller's business
// (see store/doc.go); TryLock never blocks and so cannot deadlock.
package lockfile
