package pull

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"

	"github.com/stowage/stowage/archive"
	"github.com/stowage/stowage/layer"
	"github.com/stowage/stowage/source"
	"github.com/stowage/stowage/store"
)

// DefaultJobs is how many layers are fetched and extracted at once when
// Options.Jobs is 0.
const DefaultJobs = 4

// Options configure Pull. The zero value pulls with DefaultJobs, no
// names and no progress reports.
type Options struct {
	// Names are given to the image (NormalizeName them first); a name
	// another image has moves to this one, as in containers/storage.
	Names []string
	// SourceNames, when Names is empty, names the image after what the
	// source suggests (SuggestedNames: a docker-archive's tags, a registry
	// reference).
	SourceNames bool
	// Jobs bounds the layers fetched, verified and extracted at once.
	Jobs int
	// Progress receives per-layer events; nil: none.
	Progress Progress
}

// How says where a layer of a pull came from.
type How string

const (
	HowFetched How = "fetched" // read from the source
	HowCopied  How = "copied"  // extracted from a stored layer with the same diff ID
	HowReused  How = "reused"  // the layer (same chain) was already stored
)

// LayerResult describes one layer of a pull.
type LayerResult struct {
	ID     string        `json:"id"`
	Digest digest.Digest `json:"digest"`
	DiffID digest.Digest `json:"diff-id"`
	How    How           `json:"how"`
	Bytes  int64         `json:"bytes"` // blob bytes read from the source
}

// Result describes a finished pull.
type Result struct {
	ImageID        string        `json:"id"`
	ManifestDigest digest.Digest `json:"digest"`
	Names          []string      `json:"names,omitempty"`
	Layers         []LayerResult `json:"layers"`
	Fetched        int           `json:"fetched"`
	Copied         int           `json:"copied"`
	Reused         int           `json:"reused"`
	Bytes          int64         `json:"bytes"` // blob bytes read from the source
	Duration       time.Duration `json:"duration-ns"`
}

// Pull copies the image src resolves into st and records it the way
// containers/image's storage destination does (see image.go), so podman
// and skopeo use it and share its layers.
//
// Layers already stored (same chain ID) are not fetched; a layer whose
// diff ID is stored under another chain is extracted from that copy.
// The others are fetched, verified against their blob digest and diff ID
// and extracted into staging, up to Options.Jobs at once, then committed
// in parent order under short store locks. On overlay layers are
// extracted without waiting for their parents and a committer commits
// each one as soon as it and every layer below it are staged; on vfs,
// whose layers start as a copy of their parent, each layer is extracted
// once its parent is committed.
// Each layer is created under LockLayerFetch, taken in parent order, so a
// concurrent pull of the same layers waits and then reuses them. A stored
// layer that is deleted before the pull uses it (another pull's rollback)
// makes the pull plan again and fetch it, up to maxAttempts times.
//
// On error or a cancelled ctx, layers this call committed are deleted
// again (unless something else started using them) and staged trees are
// discarded; what a kill leaves is staging that the store's recovery
// removes.
func Pull(ctx context.Context, st *store.Store, src source.Source, opts Options) (*Result, error) {
	start := time.Now()
	img, err := src.Image(ctx)
	if err != nil {
		return nil, err
	}
	if len(opts.Names) == 0 && opts.SourceNames {
		opts.Names = SuggestedNames(img)
	}
	p := newPuller(st, src, img, opts)
	id, err := p.pull(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{ImageID: id, ManifestDigest: img.ManifestDigest, Names: opts.Names, Duration: time.Since(start)}
	for _, j := range p.jobs {
		lr := LayerResult{ID: j.id, Digest: j.layer.Digest, DiffID: j.layer.DiffID, How: j.how, Bytes: j.bytes.Load()}
		res.Layers = append(res.Layers, lr)
		res.Bytes += lr.Bytes
		switch j.how {
		case HowFetched:
			res.Fetched++
		case HowCopied:
			res.Copied++
		default:
			res.Reused++
		}
	}
	return res, nil
}

// puller is one Pull in progress.
type puller struct {
	// Fixed at construction.
	st         *store.Store
	src        source.Source
	img        *source.Image
	opts       Options
	prog       Progress
	lateParent bool // st.StagesWithoutParent: stage without the parent, commit in order
	jobs       []*job

	// Carried from one attempt to the next (see pull); read and written
	// between attempts and by acquireAll.
	kept map[string]func() // fetch locks of the layers in own, when no job holds them

	mu sync.Mutex
	// Guarded by mu: layers committed by this pull (in any attempt), in
	// commit order, and the job that committed each.
	committed []string
	own       map[string]*job
}

// job is one layer. Its fields are written by the goroutine handling
// it; others read them after its committed channel is closed or after
// the errgroup's Wait.
type job struct {
	i         int
	id        string
	layer     source.Layer
	how       How
	bytes     atomic.Int64
	unlock    func() // the LockLayerFetch hold; nil when not held
	staged    *store.StagedLayer
	finish    func() error  // the commit's deferred last flush (CommitDeferSync); nil when run
	ready     chan struct{} // closed when staged is set (lateParent only)
	committed chan struct{} // closed when the layer is in the store
}

func newPuller(st *store.Store, src source.Source, img *source.Image, opts Options) *puller {
	if opts.Jobs <= 0 {
		opts.Jobs = DefaultJobs
	}
	prog := opts.Progress
	if prog == nil {
		prog = nopProgress{}
	}
	diffIDs := make([]digest.Digest, len(img.Layers))
	for i, l := range img.Layers {
		diffIDs[i] = l.DiffID
	}
	p := &puller{st: st, src: src, img: img, opts: opts, prog: prog, lateParent: st.StagesWithoutParent(),
		kept: map[string]func(){}, own: map[string]*job{}}
	p.newJobs(LayerIDs(diffIDs))
	return p
}

// newJobs gives every layer a fresh job (for the first attempt, or the
// next one).
func (p *puller) newJobs(ids []string) {
	p.jobs = nil
	for i, l := range p.img.Layers {
		p.jobs = append(p.jobs, &job{i: i, id: ids[i], layer: l, ready: make(chan struct{}), committed: make(chan struct{})})
	}
}

// maxAttempts bounds how often a pull plans and pulls its layers when a
// stored layer it counted on vanished (see vanished).
const maxAttempts = 3

// pull makes every layer present and records the image. A layer found
// stored is reused without its fetch lock, so a failing pull's rollback
// may delete it before this pull builds on it (the parent of its next
// commit) or names it (the image's top layer); the store then reports the
// layer unknown, and pull plans again, up to maxAttempts in all: each
// attempt looks at the store again, so a vanished layer is fetched under
// its lock (which the failed pull releases only after its rollback).
// Layers committed by an earlier attempt stay, with their fetch locks
// held, and are reused; on a final failure every layer this pull committed
// is deleted before those locks are released.
func (p *puller) pull(ctx context.Context) (string, error) {
	for attempt := 1; ; attempt++ {
		err := p.pullLayers(ctx)
		if err == nil {
			var id string
			if id, err = p.createImage(ctx); err == nil {
				return id, nil
			}
		}
		if attempt >= maxAttempts || ctx.Err() != nil || !vanished(err) {
			p.rollback(ctx)
			p.releaseKept()
			return "", err
		}
		slog.Debug("pull: a stored layer it used was deleted meanwhile; planning again", "attempt", attempt, "err", err)
		ids := make([]string, len(p.jobs))
		for i, j := range p.jobs {
			ids[i] = j.id
		}
		p.newJobs(ids)
	}
}

// vanished reports whether err is only the store not knowing a layer the
// pull found stored earlier: the parent of a commit or of a staging
// (ErrParentUnknown), the image's top layer or the source of a copy
// (ErrLayerUnknown). A bad blob or an ended context is never one.
func vanished(err error) bool {
	if errors.Is(err, source.ErrDigestMismatch) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, store.ErrParentUnknown) || errors.Is(err, store.ErrLayerUnknown)
}

// ownJob returns the job that committed layer id in this pull, or nil.
func (p *puller) ownJob(id string) *job {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.own[id]
}

// releaseKept releases the fetch locks kept from failed attempts.
func (p *puller) releaseKept() {
	for id, unlock := range p.kept {
		unlock()
		delete(p.kept, id)
	}
}

func (p *puller) event(j *job, k EventKind, bytes, total int64) {
	p.prog.Event(Event{Kind: k, Index: j.i, Digest: j.layer.Digest, LayerID: j.id, Bytes: bytes, Total: total})
}

// present reports whether layer id is stored and complete.
func (p *puller) present(ctx context.Context, id string) (bool, error) {
	l, err := p.st.Layer(ctx, id)
	if errors.Is(err, store.ErrLayerUnknown) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return l.Flags[layer.IncompleteFlag] == nil, nil
}

// pullLayers makes every layer of the image present: the steps are
// acquire (in parent order, in this goroutine), fetch+stage (in the
// errgroup), and commit (in order: on vfs by each fetch goroutine once its
// parent is in, on overlay by one committer goroutine running alongside
// the fetches, so commits overlap the extraction of later layers and only
// the last few are left when the last extraction ends).
//
// On error the fetch locks of the layers this pull committed stay held
// (in p.kept) for pull to roll them back or reuse them; the others are
// released.
func (p *puller) pullLayers(ctx context.Context) (retErr error) {
	defer func() {
		// The commits' last flushes, deferred so that each commit did not
		// wait for the one before: done before anything names the layers
		// (the image record) and before their fetch locks are released.
		if err := p.finishCommits(); err != nil && retErr == nil {
			retErr = err
		}
		for _, j := range p.jobs {
			if j.staged != nil {
				_ = j.staged.Discard() // staging that recovery would otherwise remove
			}
			if retErr != nil && j.unlock != nil && p.ownJob(j.id) != nil {
				// Released after the rollback (waiters then find the layer
				// gone), or reused by the next attempt.
				p.kept[j.id], j.unlock = j.unlock, nil
			}
			p.release(j)
		}
		if retErr == nil {
			p.releaseKept() // none is left: acquireAll took them all
		}
	}()
	// Owner of every fetch goroutine and of the committer: g.Wait below.
	// stop ends them when acquireAll fails (nothing else cancels gctx then,
	// and the committer would wait for layers that never get staged).
	gctx, stop := context.WithCancel(ctx)
	defer stop()
	g, gctx := errgroup.WithContext(gctx)
	if p.lateParent {
		// The committer has a slot of its own for the whole pull.
		g.SetLimit(p.opts.Jobs + 1)
		g.Go(func() error { return p.commitAll(gctx) })
	} else {
		g.SetLimit(p.opts.Jobs)
	}
	acquireErr := p.acquireAll(gctx, g)
	if acquireErr != nil {
		stop()
	}
	err := g.Wait()
	if acquireErr != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return acquireErr
	}
	return err
}

// commitAll commits the staged layers in parent order, each as soon as it
// is staged (a layer found stored, or committed by another pull, is
// skipped). It runs alongside the fetches (overlay only).
func (p *puller) commitAll(ctx context.Context) error {
	for _, j := range p.jobs {
		select {
		case <-j.committed: // reused
			continue
		case <-j.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := p.commit(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

// acquireAll takes each missing layer's fetch lock in parent order and
// starts its fetch; a layer found present (perhaps committed meanwhile by
// a pull that held its lock) is reused. A layer an earlier attempt
// committed comes with its lock (p.kept), which it keeps.
func (p *puller) acquireAll(ctx context.Context, g *errgroup.Group) error {
	for _, j := range p.jobs {
		if unlock, ok := p.kept[j.id]; ok {
			j.unlock = unlock
			delete(p.kept, j.id)
		}
		ok, err := p.present(ctx, j.id)
		if err != nil {
			return err
		}
		switch {
		case j.unlock != nil: // kept: held already
		case ok:
			// A pull killed between committing the layer and releasing
			// its lock left the lock file; nobody else would take it.
			_ = p.st.RemoveStaleFetchLock(j.id) // only an inode; GC also removes it
		default:
			if j.unlock, err = p.lock(ctx, j); err != nil {
				return err
			}
			if ok, err = p.present(ctx, j.id); err != nil {
				return err
			}
		}
		if prev := p.ownJob(j.id); ok && prev != nil {
			// Committed by an earlier attempt: it counts as what that
			// attempt did, and its lock stays held (for a rollback).
			j.how = prev.how
			j.bytes.Store(prev.bytes.Load())
			close(j.committed)
			p.event(j, EventCommitted, j.bytes.Load(), j.layer.Size)
			continue
		}
		if ok {
			p.release(j)
			j.how = HowReused
			close(j.committed)
			p.event(j, EventReused, 0, 0)
			continue
		}
		g.Go(func() error { return p.fetch(ctx, j) })
	}
	return nil
}

// lock takes j's fetch lock, reporting EventWaiting if that takes a while.
func (p *puller) lock(ctx context.Context, j *job) (func(), error) {
	t := time.AfterFunc(200*time.Millisecond, func() { p.event(j, EventWaiting, 0, 0) })
	defer t.Stop()
	return p.st.LockLayerFetch(ctx, j.id)
}

func (p *puller) release(j *job) {
	if j.unlock != nil {
		j.unlock()
		j.unlock = nil
	}
}

// waitParent waits until layer i-1 is in the store.
func (p *puller) waitParent(ctx context.Context, j *job) error {
	if j.i == 0 {
		return nil
	}
	select {
	case <-p.jobs[j.i-1].committed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *puller) parentID(j *job) string {
	if j.i == 0 {
		return ""
	}
	return p.jobs[j.i-1].id
}

// fetch stages layer j from the source (or a stored copy), verifying it,
// and on vfs commits it.
func (p *puller) fetch(ctx context.Context, j *job) error {
	opts := store.LayerOptions{ID: j.id, ReadOnly: true, CompressedDigest: j.layer.Digest, CompressedSize: j.layer.Size}
	if !p.lateParent {
		if err := p.waitParent(ctx, j); err != nil {
			return err
		}
		opts.Parent = p.parentID(j)
	}
	blob, v, err := p.open(ctx, j)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", j.i, j.layer.Digest, err)
	}
	if v == nil {
		// A stored layer's uncompressed diff: hash it (its digest must be
		// the diff ID), and record it as the uncompressed blob it is.
		opts.CompressedDigest, opts.CompressedSize = "", 0
	}
	staged, err := p.st.StageLayer(ctx, blob, opts)
	if v != nil && ctx.Err() == nil {
		// Read the rest of the blob: a corrupt blob usually breaks
		// decompression before its end, and the digest is the clearer cause.
		if verr := v.finish(); verr != nil && (err == nil || errors.Is(verr, source.ErrDigestMismatch)) {
			err = verr
		}
	}
	if cerr := blob.Close(); err == nil && cerr != nil && j.how == HowCopied {
		err = cerr // a failed local diff
	}
	if err == nil && staged.Result().UncompressedDigest != j.layer.DiffID {
		err = fmt.Errorf("uncompressed content has digest %s, the config says %s: %w",
			staged.Result().UncompressedDigest, j.layer.DiffID, source.ErrDigestMismatch)
	}
	if err != nil {
		if staged != nil {
			_ = staged.Discard() // err is what the caller needs
		}
		return fmt.Errorf("layer %d (%s): %w", j.i, j.layer.Digest, err)
	}
	j.staged = staged
	p.event(j, EventExtracted, j.bytes.Load(), j.layer.Size)
	if p.lateParent {
		close(j.ready) // commitAll takes it from here
		return nil
	}
	return p.commit(ctx, j)
}

// open returns j's blob stream: a verified source blob, or the
// uncompressed diff of a stored layer with the same diff ID (v nil).
func (p *puller) open(ctx context.Context, j *job) (io.ReadCloser, *verifier, error) {
	if from, ok := p.storedCopy(ctx, j); ok {
		j.how = HowCopied
		p.event(j, EventCopy, 0, 0)
		return &lazyDiff{ctx: ctx, st: p.st, id: from}, nil, nil
	}
	j.how = HowFetched
	p.event(j, EventFetch, 0, j.layer.Size)
	rc, err := p.src.Blob(ctx, j.layer)
	if err != nil {
		return nil, nil, err
	}
	v, err := newVerifier(rc, j.layer.Digest, j.layer.Size, func(n int64) {
		j.bytes.Store(n)
		p.event(j, EventBytes, n, j.layer.Size)
	})
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{v, rc}, v, nil
}

// storedCopy finds a stored layer with j's diff ID (directly, or through
// its blob digest).
func (p *puller) storedCopy(ctx context.Context, j *job) (string, bool) {
	for _, d := range []digest.Digest{j.layer.DiffID, j.layer.Digest} {
		ls, err := p.st.LayersByDigest(ctx, d)
		if err != nil {
			continue
		}
		for _, l := range ls {
			if l.UncompressedDigest == j.layer.DiffID && l.Flags[layer.IncompleteFlag] == nil {
				return l.ID, true
			}
		}
	}
	return "", false
}

// commit makes staged layer j a layer on its parent. An ID committed
// meanwhile by another process counts as reused.
func (p *puller) commit(ctx context.Context, j *job) error {
	if err := p.waitParent(ctx, j); err != nil {
		return err
	}
	_, finish, err := j.staged.CommitDeferSync(ctx, p.parentID(j))
	switch {
	case errors.Is(err, store.ErrDuplicateID):
		_ = j.staged.Discard() // the stored layer has the same chain, so the same contents
		j.how = HowReused
	case err != nil:
		j.staged = nil // Commit discarded it
		return fmt.Errorf("layer %d (%s): %w", j.i, j.layer.Digest, err)
	default:
		p.mu.Lock()
		p.committed = append(p.committed, j.id)
		p.own[j.id] = j
		j.finish = finish
		p.mu.Unlock()
	}
	j.staged = nil
	close(j.committed)
	if finish == nil {
		p.release(j) // else when pullLayers ends: after finishCommits (and a rollback)
	}
	p.event(j, EventCommitted, j.bytes.Load(), j.layer.Size)
	return nil
}

// finishCommits runs the deferred last flush of every commit (all the
// same directory's fsync: the first one persists every rename before it,
// the others cost little). The fetch locks stay held: pullLayers releases
// them after a failed pull's rollback, as for any other layer.
func (p *puller) finishCommits() error {
	var errs []error
	for _, j := range p.jobs {
		p.mu.Lock()
		finish := j.finish
		j.finish = nil
		p.mu.Unlock()
		if finish != nil {
			errs = append(errs, finish())
		}
	}
	return errors.Join(errs...)
}

// rollback deletes the layers this pull committed, newest first; a layer
// something else now uses stays. The caller holds those layers' fetch
// locks (p.kept) and releases them afterwards, so that a waiting pull
// finds the layers gone rather than about to go.
func (p *puller) rollback(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	p.mu.Lock()
	ids := p.committed
	p.committed = nil
	clear(p.own)
	p.mu.Unlock()
	for i := len(ids) - 1; i >= 0; i-- {
		if err := p.st.DeleteLayer(ctx, ids[i]); err != nil {
			slog.Debug("pull rollback: keeping layer", "id", ids[i], "err", err)
		}
	}
}

// lazyDiff opens the stored layer's uncompressed diff on first Read:
// Store.Diff holds the layers read lock while it streams, and StageLayer
// must plan (under the write lock) before it reads.
type lazyDiff struct {
	ctx context.Context
	st  *store.Store
	id  string
	rc  io.ReadCloser
}

func (l *lazyDiff) Read(b []byte) (int, error) {
	if l.rc == nil {
		none := archive.Uncompressed
		rc, err := l.st.Diff(l.ctx, "", l.id, store.DiffOptions{Compression: &none})
		if err != nil {
			return 0, err
		}
		l.rc = rc
	}
	return l.rc.Read(b)
}

func (l *lazyDiff) Close() error {
	if l.rc == nil {
		return nil
	}
	return l.rc.Close()
}
