package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/internal/lifecycle"
)

// Defaults of a Worker.
const (
	// DefaultPollInterval is how often a worker looks for streams to
	// claim, and for events that other nodes accepted.
	DefaultPollInterval = time.Second
	// DefaultLinger is how long a stream waits after a wake-up for more
	// events to join a small batch.
	DefaultLinger = 10 * time.Millisecond
	// BaseBackoff is the first wait after a failed delivery; it doubles
	// with every failure in a row, with jitter, up to
	// trail.MaxStreamBackoff.
	BaseBackoff = time.Second
	// MaxRetryAfter caps a receiver's Retry-After.
	MaxRetryAfter = time.Hour
)

// Observer is told about deliveries, for metrics. Its methods must not
// block.
type Observer interface {
	StreamDelivered(s *trail.Stream, events int)
	StreamFailed(s *trail.Stream, state string)
	StreamRetried(s *trail.Stream)
	StreamLag(s *trail.Stream)
	// StreamDeleted: the stream is gone; its series may be dropped.
	StreamDeleted(s *trail.Stream)
}

// Worker delivers the streams it claims. Every node runs one; a stream
// is held by one node at a time, under a lease it renews.
type Worker struct {
	Streams trail.StreamService
	Events  trail.EventService
	// Open fills s.Secrets from s.Sealed.
	Open   func(s *trail.Stream) error
	Client *http.Client
	// Node names this node in its claims; it should stay the same across
	// restarts (trail serve keeps it in the data directory), so that a
	// restarted node takes its streams back at once. Default: a random
	// name, whose streams wait for their leases after a restart.
	Node   string
	Logger *slog.Logger
	// Observer, if set, is told about deliveries.
	Observer     Observer
	PollInterval time.Duration
	Lease        time.Duration
	Linger       time.Duration
	// NewDestination overrides how a stream's destination is made
	// (tests).
	NewDestination func(s *trail.Stream) (Destination, error)
	// Now is the worker's clock, for retry times (time.Now when nil).
	// Leases and polls run on real timers.
	Now func() time.Time
	// OnClaimRound, if set, is called after each round of claims, once
	// no due stream is left to claim (tests: a round happened).
	OnClaimRound func()
	// OnIdle, if set, is called with a held stream's id each time its
	// delivery loop is about to wait having sent nothing in that turn:
	// no events past its cursor, its retry time not reached, or its
	// destination broken (tests: a full round happened and sent
	// nothing). It must not block.
	OnIdle func(streamID string)
	// OnRelease, if set, is called with a stream's id when this worker
	// has stopped holding it (paused, deleted, taken over, or the worker
	// stopping): it sends nothing more of it until claimed again
	// (tests). It must not block.
	OnRelease func(streamID string)

	mu      sync.Mutex // mu guards the fields below
	held    map[string]bool
	events  chan struct{} // closed and replaced when events arrive
	changed chan struct{} // closed and replaced when streams change
	claim   chan struct{}
	loops   lifecycle.Group // the claimer and a goroutine per held stream
}

func (w *Worker) init() {
	if w.held == nil {
		w.held = map[string]bool{}
		w.events = make(chan struct{})
		w.changed = make(chan struct{})
		w.claim = make(chan struct{}, 1)
	}
	if w.Logger == nil {
		w.Logger = slog.New(slog.DiscardHandler)
	}
	if w.PollInterval <= 0 {
		w.PollInterval = DefaultPollInterval
	}
	if w.Lease <= 0 {
		w.Lease = trail.StreamLease
	}
	if w.Linger <= 0 {
		w.Linger = DefaultLinger
	}
	if w.Client == nil {
		w.Client = NewClient(ClientOptions{})
	}
	if w.Node == "" {
		w.Node = "node-" + ident.Claim()
	}
}

// Start starts claiming and delivering streams, until Stop or until ctx
// ends (lifecycle.Group: idempotent).
func (w *Worker) Start(ctx context.Context) {
	w.mu.Lock()
	w.init()
	w.mu.Unlock()
	w.loops.Start(ctx, w.claimLoop)
}

// Stop stops delivering: every held stream is given back. It waits for
// the streams' goroutines and is safe to call twice or before Start.
func (w *Worker) Stop() { w.loops.Stop() }

// Wake tells the worker that events were accepted.
func (w *Worker) Wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	close(w.events)
	w.events = make(chan struct{})
}

// Changed tells the worker that a stream was created or changed through
// the API: held streams reload at once, new ones are claimed.
func (w *Worker) Changed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.init()
	close(w.changed)
	w.changed = make(chan struct{})
	select {
	case w.claim <- struct{}{}:
	default:
	}
}

// now is the time on the worker's clock.
func (w *Worker) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

// idle tells OnIdle that a held stream waits having sent nothing.
func (w *Worker) idle(streamID string) {
	if w.OnIdle != nil {
		w.OnIdle(streamID)
	}
}

func (w *Worker) signals() (events, changed <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.events, w.changed
}

func (w *Worker) claimLoop(ctx context.Context) {
	// Whatever this node held before it restarted is its own again.
	if n, err := w.Streams.ReleaseNodeStreams(ctx, w.Node); err != nil {
		w.Logger.Warn("release the streams of this node's previous run; they wait for their leases", "node", w.Node, "err", err)
	} else if n > 0 {
		w.Logger.Info("took back the streams of this node's previous run", "node", w.Node, "streams", n)
	}
	for {
		w.claimAll(ctx)
		if w.OnClaimRound != nil {
			w.OnClaimRound()
		}
		t := time.NewTimer(w.PollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.claim:
			t.Stop()
		case <-t.C:
		}
	}
}

// claimAll claims every due stream and starts delivering it.
func (w *Worker) claimAll(ctx context.Context) {
	for ctx.Err() == nil {
		st, err := w.Streams.ClaimStream(ctx, w.Node, w.Lease)
		if err != nil {
			if ctx.Err() == nil {
				w.Logger.Error("claim log stream; trying again", "err", err)
			}
			return
		}
		if st == nil {
			return
		}
		w.mu.Lock()
		if w.held[st.ID] {
			// Held here already: this claim replaced ours after our lease
			// ran out; the running holder finds it lost and stops, and
			// the stream is due again after this lease.
			w.mu.Unlock()
			continue
		}
		w.held[st.ID] = true
		w.mu.Unlock()
		started := w.loops.Go(ctx, func(ctx context.Context) {
			w.hold(ctx, st)
			w.mu.Lock()
			delete(w.held, st.ID)
			w.mu.Unlock()
			if w.OnRelease != nil {
				w.OnRelease(st.ID)
			}
		})
		if !started { // stopping: the claim is given back
			w.mu.Lock()
			delete(w.held, st.ID)
			w.mu.Unlock()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := w.Streams.ReleaseStream(rctx, st); err != nil {
				w.Logger.Warn("give back a stream claimed while stopping; it waits for its lease", "stream", st.ID, "err", err)
			}
			cancel()
			return
		}
	}
}

// Destination makes the destination of a stream whose secrets are open.
func (w *Worker) Destination(s *trail.Stream) (Destination, error) {
	if w.NewDestination != nil {
		return w.NewDestination(s)
	}
	switch s.Type {
	case trail.StreamDatadog:
		return NewDatadog(w.Client, s), nil
	case trail.StreamSplunk:
		return NewSplunk(w.Client, s), nil
	case trail.StreamS3, trail.StreamGCS:
		return NewBucket(w.Client, s), nil
	case trail.StreamHTTPS:
		return NewHTTPS(w.Client, s)
	}
	return nil, &Failure{Permanent: true, Message: fmt.Sprintf("unknown stream type %q", s.Type)}
}

// openFailure is the failure of a stream whose secrets do not open under
// this server's key.
func openFailure(err error) *Failure {
	return &Failure{Permanent: true, Message: "the stream's secrets do not open: not sealed with this secret key, or altered", Err: err}
}

// Test sends one test event to the stream's destination now, whatever
// its state, and returns the destination's answer. The cursor does not
// move. A failure is a *Failure whose Error is fit for the tenant
// (Classify); the full error is logged.
func (w *Worker) Test(ctx context.Context, s *trail.Stream, ev *trail.Event) error {
	w.mu.Lock()
	w.init()
	w.mu.Unlock()
	var f *Failure
	if err := w.Open(s); err != nil {
		f = openFailure(err)
	} else if d, err := w.Destination(s); err != nil {
		f = asFailure(err)
		f.Permanent = true
	} else if _, err := d.Send(ctx, []*trail.Event{ev}); err != nil {
		f = asFailure(err)
	}
	if f == nil {
		return nil
	}
	w.Logger.Warn("log stream test failed", "stream", s.ID, "organization", s.OrganizationID, "type", s.Type, "err", f.Detail())
	return f
}

// backoff is the wait after the attempt-th failure in a row: BaseBackoff
// doubled each time, capped, with full jitter over its upper half.
func backoff(attempt int) time.Duration {
	d := trail.MaxStreamBackoff
	if attempt < 20 {
		d = min(BaseBackoff<<(attempt-1), trail.MaxStreamBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// holding is one held stream: the stream as its holder knows it, and the
// renewals that keep the claim.
type holding struct {
	w  *Worker
	st *trail.Stream // the delivery loop's own
	// claim names the stream and the claim, for the renewals: the
	// delivery loop replaces st when the stream changes.
	claim   *trail.Stream
	updates chan *trail.Stream // the stream as stored, from renewals
	renew   chan struct{}      // asks for a renewal now
}

// hold delivers a claimed stream until the worker stops, the stream is
// paused or deleted, or the claim is lost.
func (w *Worker) hold(parent context.Context, st *trail.Stream) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	h := &holding{w: w, st: st, claim: &trail.Stream{OrganizationID: st.OrganizationID, ID: st.ID, Claim: st.Claim},
		updates: make(chan *trail.Stream, 1), renew: make(chan struct{}, 1)}
	w.Logger.Info("log stream claimed; delivering", "stream", st.ID, "type", st.Type, "organization", st.OrganizationID, "cursor", st.Cursor)
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		h.renewLoop(ctx, cancel)
	}()
	released := h.deliver(ctx)
	cancel()
	<-renewDone
	if !released {
		return
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	if err := w.Streams.ReleaseStream(rctx, h.claim); err != nil {
		w.Logger.Warn("release log stream; another node takes it over when the lease ends", "stream", st.ID, "err", err)
	}
}

// renewLoop renews the claim every third of the lease, or when asked,
// and passes the stored stream on. When the claim is lost, or cannot be
// renewed before the lease ends, it cancels the holding.
func (h *holding) renewLoop(ctx context.Context, cancel context.CancelFunc) {
	w := h.w
	last := time.Now()
	every := w.Lease / 3
	for {
		t := time.NewTimer(every)
		_, changed := w.signals()
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-h.renew:
			t.Stop()
		case <-changed:
			t.Stop()
		}
		cur, err := w.Streams.RenewStream(ctx, h.claim, w.Lease)
		switch code := trail.ErrorCode(err); {
		case err == nil:
			last = time.Now()
			// Only the latest matters: replace one not read yet.
			select {
			case <-h.updates:
			default:
			}
			select {
			case h.updates <- cur:
			case <-ctx.Done():
				return
			}
		case ctx.Err() != nil:
			return
		case code == trail.ENOTFOUND:
			h.deleted()
			cancel()
			return
		case code == trail.ECONFLICT:
			w.Logger.Warn("log stream taken over by another node; stopping its delivery here", "stream", h.claim.ID)
			cancel()
			return
		default:
			if time.Since(last) > w.Lease-every/2 {
				w.Logger.Error("log stream lease not renewed in time; stopping its delivery here", "stream", h.claim.ID, "err", err)
				cancel()
				return
			}
			w.Logger.Warn("renew log stream lease; trying again", "stream", h.claim.ID, "err", err)
			every = time.Second
			continue
		}
		every = w.Lease / 3
	}
}

// deleted ends the holding of a stream that was deleted, as the renewal or
// the delivery loop finds it (either may be first; both may).
func (h *holding) deleted() {
	h.w.Logger.Info("log stream deleted; stopping its delivery", "stream", h.claim.ID)
	if h.w.Observer != nil {
		h.w.Observer.StreamDeleted(h.claim)
	}
}

// deliver is the delivery loop of a held stream. It reports whether the
// claim should be given back; giving back a lost claim changes nothing.
func (h *holding) deliver(ctx context.Context) (release bool) {
	d := &deliveryLoop{h: h, w: h.w, st: h.st, ctx: ctx}
	d.setup()
	for {
		if done, release := d.step(); done {
			return release
		}
	}
}

// deliveryLoop is the state of a held stream's delivery loop.
type deliveryLoop struct {
	h       *holding
	w       *Worker
	st      *trail.Stream
	ctx     context.Context
	dest    Destination
	destErr error // why the stream cannot be delivered as it is
	attempt int   // failures in a row
	batch   int   // the batch size after a batch too large, or 0
	retried bool  // the next send is a retry
}

// setup makes the stream's destination.
func (d *deliveryLoop) setup() {
	d.dest, d.destErr = nil, nil
	if err := d.w.Open(d.st); err != nil {
		d.destErr = openFailure(err)
	} else {
		d.dest, d.destErr = d.w.Destination(d.st)
	}
}

// apply adopts the stream as stored: a change through the API
// (generation), a pause, or a cursor moved by a replay.
func (d *deliveryLoop) apply(cur *trail.Stream) {
	w, st := d.w, d.st
	if cur.Generation != st.Generation {
		w.Logger.Info("log stream changed; reloading", "stream", st.ID, "generation", cur.Generation)
		d.attempt, d.batch, d.retried = 0, 0, false
		*st = *cur
		d.setup()
	} else {
		st.Lag, st.State, st.RetryAt, st.LastError = cur.Lag, cur.State, cur.RetryAt, cur.LastError
	}
	if w.Observer != nil {
		w.Observer.StreamLag(st)
	}
}

// wait sleeps until dur passes, a signal fires, or the stream changed; it
// reports false when the holding ends.
func (d *deliveryLoop) wait(dur time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-d.ctx.Done():
		return false
	case cur := <-d.h.updates:
		d.apply(cur)
	case <-wake:
	case <-t.C:
	}
	return true
}

// step is one turn of the loop: it waits, or reads a batch and sends it.
// done reports that the holding ends, and release whether the claim should
// be given back.
func (d *deliveryLoop) step() (done, release bool) {
	ctx, w, h, st := d.ctx, d.w, d.h, d.st
	select {
	case <-ctx.Done():
		return true, true
	case cur := <-h.updates:
		d.apply(cur)
	default:
	}
	if st.State == trail.StreamInactive {
		return true, true
	}
	if d.destErr != nil {
		return d.broken()
	}
	if st.RetryAt != nil {
		if dur := st.RetryAt.Sub(w.now()); dur > 0 {
			w.idle(st.ID)
			return !d.wait(dur, nil), true
		}
	}
	events, _ := w.signals()
	limit := d.dest.MaxBatch()
	if d.batch > 0 {
		limit = min(limit, d.batch)
	}
	page, cur, err := h.fetch(ctx, st.Cursor-1, limit)
	switch {
	case trail.ErrorCode(err) == trail.ENOTFOUND:
		h.deleted()
		return true, true
	case err != nil:
		if ctx.Err() != nil {
			return true, true
		}
		w.Logger.Error("read events of log stream; trying again", "stream", st.ID, "err", err)
		return !d.wait(time.Second, nil), true
	case len(page.Events) == 0:
		w.idle(st.ID)
		if !d.wait(w.PollInterval, events) {
			return true, true
		}
		// Let a burst of single events gather into one batch.
		return !d.wait(w.Linger, nil), true
	case cur.Claim != h.claim.Claim:
		w.Logger.Warn("log stream taken over by another node; stopping its delivery here", "stream", st.ID)
		return true, false
	case cur.Generation != st.Generation || cur.State == trail.StreamInactive:
		d.apply(cur)
		return false, false
	}
	return d.send(page.Events)
}

// broken handles a stream that cannot be delivered as it is (its secrets
// do not open, its config is broken): recorded, then tried again after the
// longest backoff or a change.
func (d *deliveryLoop) broken() (done, release bool) {
	w, st := d.w, d.st
	if st.RetryAt == nil || !w.now().Before(*st.RetryAt) {
		f := asFailure(d.destErr)
		f.Permanent = true
		d.h.fail(d.ctx, f, w.now().Add(trail.MaxStreamBackoff))
		d.setup()
	}
	if st.RetryAt != nil {
		w.idle(st.ID)
		if !d.wait(st.RetryAt.Sub(w.now()), nil) {
			return true, true
		}
	}
	return false, false
}

// send sends a batch and records it, or the failure.
func (d *deliveryLoop) send(events []*trail.Event) (done, release bool) {
	ctx, w, h, st := d.ctx, d.w, d.h, d.st
	if d.retried && w.Observer != nil {
		w.Observer.StreamRetried(st)
	}
	n, err := d.dest.Send(ctx, events)
	if err != nil {
		if ctx.Err() != nil {
			return true, true
		}
		f := asFailure(err)
		d.retried = true
		if f.TooLarge && len(events) > 1 {
			d.batch = len(events) / 2
			w.Logger.Info("log stream batch too large; halving it", "stream", st.ID, "events", d.batch)
			return false, false
		}
		d.attempt++
		wait := backoff(d.attempt)
		if f.RetryAfter > 0 {
			wait = min(f.RetryAfter, MaxRetryAfter)
		}
		h.fail(ctx, f, w.now().Add(wait))
		return false, false
	}
	if !h.record(ctx, events[n-1].Index+1, n) {
		return true, true
	}
	d.attempt, d.retried = 0, false
	if w.Observer != nil {
		w.Observer.StreamDelivered(st, n)
		w.Observer.StreamLag(st)
	}
	return false, false
}

// fetch reads a page of the stream's events after the index, and the
// stream as stored then: a pause, a replay or a change through the API (on
// any node) takes effect before the next batch is sent, not at the next
// renewal.
func (h *holding) fetch(ctx context.Context, after int64, limit int) (*trail.EventPage, *trail.Stream, error) {
	page, err := h.w.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: h.claim.OrganizationID, After: &after,
		Ascending: true, Raw: true, Limit: limit})
	if err != nil {
		return nil, nil, err
	}
	cur, err := h.w.Streams.FindStreamByID(ctx, h.claim.OrganizationID, h.claim.ID)
	return page, cur, err
}

// fail records a failed delivery; the stream retries at retryAt.
func (h *holding) fail(ctx context.Context, f *Failure, retryAt time.Time) {
	w, st := h.w, h.st
	state := trail.StreamError
	if f.Permanent {
		state = trail.StreamInvalid
	}
	if w.Observer != nil {
		w.Observer.StreamFailed(st, state)
	}
	// The tenant sees f.Message (last_error); the log has the details.
	w.Logger.Warn("log stream delivery failed", "stream", st.ID, "organization", st.OrganizationID, "type", st.Type, "state", state,
		"err", f.Detail(), "retry_at", retryAt.UTC().Format(time.RFC3339))
	err := w.Streams.RecordStreamFailure(ctx, st, state, f.Message, retryAt)
	if err != nil && ctx.Err() == nil {
		w.Logger.Warn("record log stream failure", "stream", st.ID, "err", err)
		// The retry time is kept here all the same.
		t := retryAt.UTC()
		st.RetryAt = &t
		h.askRenew()
	}
}

func (h *holding) askRenew() {
	select {
	case h.renew <- struct{}{}:
	default:
	}
}

// record moves the cursor after a delivery. The events are delivered:
// a failure to record is retried (a restart would send them again, which
// at least once allows). It reports false when the holding ends.
func (h *holding) record(ctx context.Context, next int64, n int) bool {
	w, st := h.w, h.st
	for {
		err := w.Streams.RecordDelivery(ctx, st, next, n)
		switch code := trail.ErrorCode(err); {
		case err == nil:
			return true
		case ctx.Err() != nil:
			return false
		case code == trail.ECONFLICT || code == trail.ENOTFOUND:
			// Changed (a replay, an update, a pause) or lost: the
			// renewal tells which.
			h.askRenew()
			select {
			case <-ctx.Done():
				return false
			case cur := <-h.updates:
				if cur.Generation == st.Generation && cur.Cursor == st.Cursor {
					continue
				}
				// The holder's loop applies it (unless a newer one came).
				select {
				case h.updates <- cur:
				default:
				}
				return true
			}
		default:
			w.Logger.Error("record log stream delivery; trying again", "stream", st.ID, "err", err)
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
		}
	}
}
