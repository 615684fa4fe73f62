package tlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/lifecycle"
)

// Defaults of the Integrator.
const (
	// DefaultInterval is how often the integrator looks for events that
	// no checkpoint covers. An accepted event is in a signed checkpoint
	// within about this long plus the time to integrate (SPEC §6: 1 s).
	DefaultInterval = 500 * time.Millisecond
	// DefaultMaxLeaves bounds the leaves one checkpoint adds, so that a
	// long backlog is integrated in steps of bounded memory.
	DefaultMaxLeaves = 1 << 16
	// DefaultBatchLogs is how many organizations one round reads.
	DefaultBatchLogs = 1000
	// maxCachedRanges bounds the compact ranges kept between rounds.
	maxCachedRanges = 10000
	// prepareConcurrency is how many organizations' steps are prepared
	// at once.
	prepareConcurrency = 4
)

// Integrator adds stored events to their organization's tree and signs
// checkpoints. Several integrators (one per node) may share a database:
// LogStore.AddCheckpoints lets one of them win each step.
type Integrator struct {
	Store  trail.LogStore
	Signer note.Signer
	// Timestamper, if set, signs the time beside each checkpoint (SPEC
	// §6), the time of Now; Trail always sets it.
	Timestamper *Timestamper
	Origin      string // origin prefix; an organization's origin is Origin/<id>
	Interval    time.Duration
	MaxLeaves   int
	Logger      *slog.Logger
	Now         func() time.Time
	// OnCheckpoint, if set, is called after each checkpoint this
	// integrator stored.
	OnCheckpoint func(orgID string, oldSize, newSize int64)
	// OnRound, if set, is called after each round of the background
	// loop (Start) with what Integrate returned: how many checkpoints it
	// stored, and its error (tests: a round happened, and signed nothing
	// when n is 0). It must not block.
	OnRound func(n int, err error)

	mu      sync.Mutex                // mu guards ranges and failing
	ranges  map[string]*compact.Range // the trees' compact ranges at their last checkpoint
	failing map[string]*failure       // organizations whose step failed, until when they wait

	loop lifecycle.Group
}

// Start runs the integrator in the background until Stop or until ctx
// ends (lifecycle.Group: idempotent).
func (ig *Integrator) Start(ctx context.Context) {
	ig.init()
	ig.loop.Start(ctx, ig.run)
}

// Stop stops the integrator and waits for its round to end. It is
// idempotent and safe before Start.
func (ig *Integrator) Stop() { ig.loop.Stop() }

func (ig *Integrator) init() {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	if ig.ranges == nil {
		ig.ranges = map[string]*compact.Range{}
		ig.failing = map[string]*failure{}
	}
}

func (ig *Integrator) run(ctx context.Context) {
	interval := ig.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	failures := 0
	for {
		start := time.Now()
		n, err := ig.Integrate(ctx)
		if ig.OnRound != nil {
			ig.OnRound(n, err)
		}
		wait := interval - time.Since(start)
		var orgErrs *OrganizationErrors
		switch {
		case err == nil || ctx.Err() != nil:
			failures = 0
		case errors.As(err, &orgErrs):
			// Some organizations failed; the others were integrated, and
			// each failing one waits on its own (Integrate skips it).
			failures = 0
			for org, e := range orgErrs.Errs {
				ig.logger().Error("integrate an organization's events into its tree; retrying", "organization", org, "err", e)
			}
		default:
			// Nothing is lost: the events are stored, and the next round
			// takes them again. Say so, and back off while it fails.
			failures++
			wait = min(interval<<min(failures, 5), 10*time.Second)
			ig.logger().Error("integrate events into their trees; retrying", "err", err, "failures", failures, "retry_in", wait)
		}
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

func (ig *Integrator) logger() *slog.Logger {
	if ig.Logger != nil {
		return ig.Logger
	}
	return slog.Default()
}

// Integrate brings every pending organization's tree up to its log and
// returns how many checkpoints it stored: one for each organization with
// new events (more while one is more than MaxLeaves behind). The steps of
// a page of organizations are stored in one transaction.
func (ig *Integrator) Integrate(ctx context.Context) (int, error) {
	ig.init()
	n := 0
	orgErrs := &OrganizationErrors{Errs: map[string]error{}}
	after := ""
	for {
		heads, err := ig.Store.PendingLogs(ctx, after, DefaultBatchLogs)
		if err != nil {
			return n, fmt.Errorf("pending logs: %w", err)
		}
		var pending []trail.LogHead
		for _, h := range heads {
			if !ig.waiting(h.OrganizationID) {
				pending = append(pending, h)
			}
		}
		for len(pending) > 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
			roundStart := time.Now()
			// The organizations' steps are prepared side by side: each
			// waits mostly for its reads.
			prepared, errs := make([]*step, len(pending)), make([]error, len(pending))
			sem := make(chan struct{}, prepareConcurrency)
			var wg sync.WaitGroup
			for i, h := range pending {
				wg.Add(1)
				sem <- struct{}{}
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					prepared[i], errs[i] = ig.prepare(ctx, h)
				}()
			}
			wg.Wait()
			var steps []*step
			var toStore []*trail.CheckpointStep
			for i, st := range prepared {
				if errs[i] != nil {
					orgErrs.Errs[pending[i].OrganizationID] = errs[i]
					ig.fail(pending[i].OrganizationID)
					continue
				}
				steps, toStore = append(steps, st), append(toStore, &st.CheckpointStep)
			}
			if len(steps) == 0 {
				break
			}
			storeStart := time.Now()
			if err := ig.Store.AddCheckpoints(ctx, toStore); err != nil {
				return n, fmt.Errorf("store checkpoints: %w", err)
			}
			ig.logger().Debug("integration step", "organizations", len(steps), "prepare", storeStart.Sub(roundStart), "store", time.Since(storeStart))
			var again []trail.LogHead
			for _, st := range steps {
				if st.Err != nil {
					orgErrs.Errs[st.head.OrganizationID] = st.Err
					ig.fail(st.head.OrganizationID)
					continue
				}
				if !st.Stored {
					continue // another node integrated this step; its range is dropped
				}
				ig.recovered(st.head.OrganizationID)
				n++
				ig.putRange(st.head.OrganizationID, st.r)
				if ig.OnCheckpoint != nil {
					ig.OnCheckpoint(st.head.OrganizationID, max(st.PrevSize, 0), st.Checkpoint.Size)
				}
				if st.Checkpoint.Size < st.head.LogSize {
					h := st.head
					h.TreeSize, h.HasCheckpoint = st.Checkpoint.Size, true
					again = append(again, h)
				}
			}
			pending = again
		}
		if len(heads) < DefaultBatchLogs {
			if len(orgErrs.Errs) > 0 {
				return n, orgErrs
			}
			return n, nil
		}
		after = heads[len(heads)-1].OrganizationID
	}
}

// OrganizationErrors reports the organizations whose step failed in a
// round; the others were integrated.
type OrganizationErrors struct {
	Errs map[string]error // by organization id
}

func (e *OrganizationErrors) Error() string {
	for org, err := range e.Errs {
		return fmt.Sprintf("integrate %s (and %d more organizations): %v", org, len(e.Errs)-1, err)
	}
	return "integrate: no error"
}

// failure is how long an organization whose step failed waits.
type failure struct {
	count int
	until time.Time
}

// waiting reports whether the organization waits after failures.
func (ig *Integrator) waiting(orgID string) bool {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	f := ig.failing[orgID]
	return f != nil && time.Now().Before(f.until)
}

// fail makes the organization wait before its next step: twice as long
// after each failure, up to a minute.
func (ig *Integrator) fail(orgID string) {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	f := ig.failing[orgID]
	if f == nil {
		f = &failure{}
		ig.failing[orgID] = f
	}
	f.count++
	interval := ig.Interval
	if interval <= 0 {
		interval = DefaultInterval
	}
	f.until = time.Now().Add(min(interval<<min(f.count, 7), time.Minute))
}

func (ig *Integrator) recovered(orgID string) {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	delete(ig.failing, orgID)
}

// step is one organization's integration step, prepared and signed.
type step struct {
	trail.CheckpointStep
	head trail.LogHead
	r    *compact.Range // the tree's compact range at the checkpoint
}

// prepare adds up to MaxLeaves events of one organization to its tree and
// signs the checkpoint, without storing anything.
func (ig *Integrator) prepare(ctx context.Context, h trail.LogHead) (*step, error) {
	orgID := h.OrganizationID
	prev, base := h.TreeSize, h.TreeSize
	if !h.HasCheckpoint {
		prev, base = -1, 0
	}
	maxLeaves := int64(ig.MaxLeaves)
	if maxLeaves <= 0 {
		maxLeaves = DefaultMaxLeaves
	}
	end := min(h.LogSize, base+maxLeaves)

	r, err := ig.takeRange(ctx, orgID, base)
	if err != nil {
		return nil, err
	}
	leaves, err := ig.Store.LeafHashes(ctx, orgID, base, end)
	if err != nil {
		return nil, fmt.Errorf("read leaf hashes: %w", err)
	}
	if int64(len(leaves)) != end-base {
		return nil, fmt.Errorf("events %d to %d: found %d leaf hashes, want %d", base, end, len(leaves), end-base)
	}
	set := &tileSet{tiles: map[trail.TileID]*trail.Tile{}, dirty: map[trail.TileID]bool{}}
	if len(leaves) > 0 {
		partial, err := ig.Store.Tiles(ctx, orgID, partialTiles(base))
		if err != nil {
			return nil, fmt.Errorf("read tiles: %w", err)
		}
		for _, t := range partial {
			// Another integrator may have grown the tile since the head
			// was read (its checkpoint wins and this step is left out);
			// the hashes up to base do not change.
			if w := int((base>>(trail.TileHeight*t.Level))%trail.TileWidth) * trail.HashSize; len(t.Hashes) > w {
				t.Hashes = t.Hashes[:w]
			}
			set.tiles[trail.TileID{Level: t.Level, Index: t.Index}] = t
		}
	}
	for i := range leaves {
		if err := r.Append(leaves[i][:], set.visit); err != nil {
			return nil, err
		}
	}
	if set.err != nil {
		return nil, set.err
	}
	root, err := rootOf(r)
	if err != nil {
		return nil, err
	}
	// The timestamp is the checkpoint's CreatedAt, in whole seconds: never
	// after it, so that a checkpoint found by CreatedAt is at least as old
	// by its signed time.
	at := ig.now()
	var ts *Timestamper
	if ig.Timestamper != nil {
		c := *ig.Timestamper
		c.Now = func() time.Time { return at }
		ts = &c
	}
	note, err := Sign(ig.Signer, ts, ig.Origin, orgID, end, root)
	if err != nil {
		return nil, err
	}
	cp := &trail.Checkpoint{OrganizationID: orgID, Size: end, Root: root, Note: note, CreatedAt: at}
	return &step{CheckpointStep: trail.CheckpointStep{PrevSize: prev, Tiles: set.list(), Checkpoint: cp}, head: h, r: r}, nil
}

func (ig *Integrator) now() time.Time {
	if ig.Now != nil {
		return ig.Now().UTC()
	}
	return time.Now().UTC()
}

// takeRange returns the compact range of the organization's tree at size,
// from the cache (removing it: the caller puts it back once the step is
// stored) or rebuilt from the tiles.
func (ig *Integrator) takeRange(ctx context.Context, orgID string, size int64) (*compact.Range, error) {
	ig.mu.Lock()
	r := ig.ranges[orgID]
	delete(ig.ranges, orgID)
	ig.mu.Unlock()
	if r != nil && r.End() == uint64(size) {
		return r, nil
	}
	return rangeAt(ctx, ig.Store, orgID, size)
}

func (ig *Integrator) putRange(orgID string, r *compact.Range) {
	ig.mu.Lock()
	defer ig.mu.Unlock()
	if len(ig.ranges) >= maxCachedRanges {
		for k := range ig.ranges { // drop one at random
			delete(ig.ranges, k)
			break
		}
	}
	ig.ranges[orgID] = r
}
