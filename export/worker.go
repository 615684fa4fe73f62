package export

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/lifecycle"
)

// Defaults of the worker.
const (
	// DefaultPollInterval is how often a worker looks for pending exports
	// that no one woke it for (those created on other nodes, or due again).
	DefaultPollInterval = time.Second
	// ExpireInterval is how often files past the TTL are removed.
	ExpireInterval = time.Minute
	// CheckpointWait is how long an export waits for a checkpoint that
	// covers every event accepted before it was created (normally under
	// a second) before it gives the export back to try later.
	CheckpointWait = time.Minute
	// ProgressInterval is how often a running export's rows are recorded
	// (with its claim renewed).
	ProgressInterval = time.Second
)

// Worker runs export jobs in the background: it claims pending exports
// (one node per export, several nodes may share a database), writes their
// files, renews its claim as it goes and records the outcome. An export
// whose holder stops or dies is taken over after its lease. Start and
// Stop may be called once each; Stop is safe before Start.
type Worker struct {
	Exports trail.ExportService
	Source  Source
	Logger  *slog.Logger
	// PollInterval, Lease and TTL (how long a ready export's file is
	// kept) take their defaults when zero.
	PollInterval time.Duration
	Lease        time.Duration
	TTL          time.Duration
	// ExpireEvery is how often expired files are removed (ExpireInterval
	// when zero).
	ExpireEvery time.Duration
	Now         func() time.Time
	// OnFinish, if set, is told of each export that ended (ready or
	// error).
	OnFinish func(ex *trail.Export, d time.Duration)
	// OnRound, if set, is called after each round of claims, once no
	// pending export is left to claim, before the worker waits (tests:
	// a round happened). It must not block.
	OnRound func()

	wake  chan struct{}
	once  sync.Once       // makes wake
	loops lifecycle.Group // the claimer and the expiry
}

func (w *Worker) defaults() {
	if w.PollInterval <= 0 {
		w.PollInterval = DefaultPollInterval
	}
	if w.Lease <= 0 {
		w.Lease = trail.ExportLease
	}
	if w.TTL <= 0 {
		w.TTL = trail.DefaultExportTTL
	}
	if w.ExpireEvery <= 0 {
		w.ExpireEvery = ExpireInterval
	}
	if w.Now == nil {
		w.Now = time.Now
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
}

// Start runs the worker until Stop or until ctx ends (lifecycle.Group:
// idempotent).
func (w *Worker) Start(ctx context.Context) {
	w.defaults()
	w.once.Do(func() { w.wake = make(chan struct{}, 1) })
	w.loops.Start(ctx, w.loop, w.expireLoop)
}

// Wake tells the worker an export was created, so that it starts without
// waiting for the next poll.
func (w *Worker) Wake() {
	if w.wake == nil {
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Stop stops the worker. An export it was writing is given back at once,
// so that another node, or this one after a restart, takes it up.
func (w *Worker) Stop() { w.loops.Stop() }

func (w *Worker) loop(ctx context.Context) {
	for {
		for ctx.Err() == nil {
			ex, err := w.Exports.ClaimExport(ctx, w.Lease)
			if err != nil {
				if ctx.Err() == nil {
					w.Logger.Error("claim export; retrying", "err", err)
				}
				break
			}
			if ex == nil {
				break
			}
			w.run(ctx, ex)
		}
		if w.OnRound != nil {
			w.OnRound()
		}
		t := time.NewTimer(w.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// expireLoop removes the files of exports past the TTL, and those of dead
// attempts, every ExpireInterval, beside the exports that run.
func (w *Worker) expireLoop(ctx context.Context) {
	for {
		if n, err := w.Exports.ExpireExports(ctx, w.Now().Add(-w.TTL)); err != nil && ctx.Err() == nil {
			w.Logger.Error("expire export files; retrying later", "err", err)
		} else if n > 0 {
			w.Logger.Info("export files expired", "exports", n)
		}
		t := time.NewTimer(w.ExpireEvery)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// run does one attempt of a claimed export and records its outcome: ready,
// error after MaxExportAttempts, or given back to try again later.
func (w *Worker) run(ctx context.Context, ex *trail.Export) {
	start := w.Now()
	log := w.Logger.With("export", ex.ID, "organization", ex.OrganizationID, "attempt", ex.Attempts)
	// The outcome is recorded even while stopping.
	rctx := context.WithoutCancel(ctx)
	var err error
	if ex.Attempts > trail.MaxExportAttempts {
		// Claimed again and again without an outcome: the nodes that
		// held it died (out of memory, killed) before they could record one.
		err = trail.Errorf(trail.EINTERNAL, "%d attempts never finished: the nodes that ran them stopped", ex.Attempts-1)
	} else {
		err = w.attempt(ctx, ex)
	}
	giveBack := func(at time.Time) {
		if err := w.Exports.ReleaseExport(rctx, ex, at); err != nil && trail.ErrorCode(err) != trail.ECONFLICT {
			log.Error("give back export; another node takes it after the lease", "err", err)
		}
	}
	switch {
	case err == nil:
		log.Info("export ready", "rows", ex.Rows, "bytes", ex.Bytes, "tree_size", ex.Checkpoint.Size, "duration", w.Now().Sub(start).Round(time.Millisecond))
		if w.OnFinish != nil {
			w.OnFinish(ex, w.Now().Sub(start))
		}
	case trail.ErrorCode(err) == trail.ECONFLICT:
		log.Warn("export taken over by another node (this node's lease ran out)")
	case ctx.Err() != nil:
		// Stopping: not the export's fault, not an attempt; the next
		// holder takes it at once.
		ex.Attempts, ex.Error = ex.Attempts-1, ""
		giveBack(w.Now())
	case err == errWaiting:
		// The integrator is behind: not the export's fault either.
		ex.Attempts, ex.Error = ex.Attempts-1, trail.ErrorMessage(err)
		log.Warn("export waits for a checkpoint", "err", err)
		giveBack(w.Now().Add(5 * time.Second))
	case ex.Attempts >= trail.MaxExportAttempts:
		ex.State, ex.Error = trail.ExportError, fmt.Sprintf("The export failed %d times; the last time: %s", ex.Attempts, trail.ErrorMessage(err))
		log.Error("export failed", "err", err)
		if err := w.Exports.FinishExport(rctx, ex, nil); err != nil {
			if trail.ErrorCode(err) != trail.ECONFLICT {
				log.Error("record export failure; retried after the lease", "err", err)
			}
		} else if w.OnFinish != nil {
			w.OnFinish(ex, w.Now().Sub(start))
		}
	default:
		ex.Error = trail.ErrorMessage(err)
		backoff := time.Duration(1<<min(ex.Attempts, 8)) * time.Second
		backoff += time.Duration(rand.Int64N(int64(backoff)/2 + 1))
		log.Warn("export attempt failed; retrying", "err", err, "retry_in", backoff.Round(time.Second))
		giveBack(w.Now().Add(backoff))
	}
}

// errWaiting is an attempt that found no checkpoint covering the export's
// events in time.
var errWaiting = trail.Errorf(trail.EUNAVAILABLE, "No signed checkpoint covered the export's events within %s: Trail's integrator is behind or failing.", CheckpointWait)

// attempt writes the file once and records it. Meanwhile a goroutine
// renews the claim every ProgressInterval with the rows written so far; a
// lost claim stops the attempt. It is stopped before the outcome is
// recorded, so that a late renewal cannot contradict it.
func (w *Worker) attempt(ctx context.Context, ex *trail.Export) error {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex // mu guards rows, bytes and renewErr
	var rows, bytes int64
	var renewErr error
	progress := func(r, b int64) {
		mu.Lock()
		rows, bytes = r, b
		mu.Unlock()
	}
	held := *ex // the renewals' copy
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(min(w.Lease/6, ProgressInterval))
		defer t.Stop()
		for {
			select {
			case <-actx.Done():
				return
			case <-t.C:
			}
			mu.Lock()
			held.Rows, held.Bytes = rows, bytes
			mu.Unlock()
			if err := w.Exports.RenewExport(actx, &held, w.Lease); err != nil {
				if actx.Err() == nil {
					mu.Lock()
					renewErr = err
					mu.Unlock()
					cancel()
				}
				return
			}
		}
	}()
	cp, file, n, size, err := w.write(actx, ex, progress)
	cancel()
	<-renewDone
	if renewErr != nil {
		if file != nil {
			file.Abort()
		}
		return renewErr
	}
	if err != nil {
		return err
	}
	ex.Checkpoint, ex.Rows, ex.Bytes = cp, n, size
	return w.Exports.FinishExport(context.WithoutCancel(ctx), ex, file)
}

// write waits for the checkpoint and writes the file; the caller records
// it. On an error the file is discarded.
func (w *Worker) write(ctx context.Context, ex *trail.Export, progress Progress) (*trail.Checkpoint, trail.ExportFile, int64, int64, error) {
	cp, err := w.waitCheckpoint(ctx, ex)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	file, err := w.Exports.CreateExportFile(ctx, ex)
	if err != nil {
		return nil, nil, 0, 0, err
	}
	written := *ex
	written.Checkpoint = cp
	rows, size, err := Write(ctx, file, w.Source, &written, progress)
	if err != nil {
		file.Abort()
		return nil, nil, 0, 0, err
	}
	return cp, file, rows, size, nil
}

// waitCheckpoint returns the organization's latest checkpoint once it
// covers every event accepted before the export was created.
func (w *Worker) waitCheckpoint(ctx context.Context, ex *trail.Export) (*trail.Checkpoint, error) {
	deadline := w.Now().Add(CheckpointWait)
	for {
		cp, err := w.Source.Logs.LatestCheckpoint(ctx, ex.OrganizationID)
		if err != nil && trail.ErrorCode(err) != trail.ENOTFOUND {
			return nil, err
		}
		if err == nil && cp.Size >= ex.MinTreeSize {
			return cp, nil
		}
		if w.Now().After(deadline) {
			return nil, errWaiting
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}
