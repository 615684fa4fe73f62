// Package groupcommit is the queue both drivers' appenders share: callers
// put their events in, committers take what is queued (up to a number of
// events) and write it in one transaction, and each caller waits until
// that transaction is committed or has failed. The driver says only how a
// batch is written (Commit); the queue, its limits, shutting down and the
// callers' contexts are handled here, once.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/lifecycle"
)

// Defaults of both drivers' queues.
const (
	// DefaultMaxEvents is the most events one transaction takes.
	DefaultMaxEvents = 10000
	// DefaultLength is how many append requests may wait; beyond it
	// AppendEvents returns EUNAVAILABLE.
	DefaultLength = 4096
)

// Queue groups requests of type R into transactions.
type Queue[R any] struct {
	// Size is how many events a request holds.
	Size func(R) int
	// MaxEvents bounds one batch: requests are taken while the batch
	// holds fewer events (one request is always taken whole).
	MaxEvents int
	// Commit writes a batch in one transaction and sets every request's
	// outcome; it returns when that outcome is final.
	Commit func(batch []R)
	// Committed, if set, is told of each batch written (events, requests,
	// how long Commit took).
	Committed func(events, requests int, took time.Duration)

	ch    chan *entry[R]
	once  sync.Once // makes ch
	group lifecycle.Group
}

// Request states: queued, taken by a committer, withdrawn by its caller.
const (
	queued int32 = iota
	taken
	withdrawn
)

type entry[R any] struct {
	r     R
	state atomic.Int32
	done  chan struct{}
}

// Start makes the queue (length requests long) and runs committers
// loops over it until Stop.
func (q *Queue[R]) Start(length, committers int) {
	q.once.Do(func() { q.ch = make(chan *entry[R], length) })
	loops := make([]func(context.Context), max(committers, 1))
	for i := range loops {
		loops[i] = q.loop
	}
	// The committers outlive any request: they stop only at Stop.
	q.group.Start(context.Background(), loops...)
}

// Stop writes what is queued, stops the committers and waits for them.
// It is idempotent.
func (q *Queue[R]) Stop() { q.group.Stop() }

// Do queues r and waits until its transaction has committed or failed.
// It answers at once, with EUNAVAILABLE, when the queue is full or
// stopping. When ctx ends before a committer has taken r, r is withdrawn
// (never written) and Do returns trail.ErrRequestEnded joined with ctx's
// error; once taken, Do waits for
// the outcome, so that a caller never hears of a failure for events that
// were written.
func (q *Queue[R]) Do(ctx context.Context, r R) error {
	done := q.group.Done()
	if done == nil {
		return trail.ErrShuttingDown()
	}
	select {
	case <-done:
		return trail.ErrShuttingDown()
	case <-ctx.Done():
		return errors.Join(trail.ErrRequestEnded(), ctx.Err())
	default:
	}
	e := &entry[R]{r: r, done: make(chan struct{})}
	select {
	case q.ch <- e:
	default:
		return trail.ErrQueueFull()
	}
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		if e.state.CompareAndSwap(queued, withdrawn) {
			return errors.Join(trail.ErrRequestEnded(), ctx.Err())
		}
	case <-done:
		if e.state.CompareAndSwap(queued, withdrawn) {
			return trail.ErrShuttingDown()
		}
	}
	<-e.done
	return nil
}

// loop takes a batch at a time until ctx ends, then writes what is still
// queued, one request at a time.
func (q *Queue[R]) loop(ctx context.Context) {
	for {
		var first *entry[R]
		select {
		case first = <-q.ch:
		case <-ctx.Done():
			for {
				select {
				case e := <-q.ch:
					q.commit([]*entry[R]{e})
				default:
					return
				}
			}
		}
		batch := []*entry[R]{first}
		n := q.Size(first.r)
	collect:
		for n < q.MaxEvents {
			select {
			case e := <-q.ch:
				batch = append(batch, e)
				n += q.Size(e.r)
			default:
				break collect
			}
		}
		q.commit(batch)
	}
}

// commit writes the requests of batch that their callers still wait for.
func (q *Queue[R]) commit(batch []*entry[R]) {
	rs := make([]R, 0, len(batch))
	kept := batch[:0]
	n := 0
	for _, e := range batch {
		if e.state.CompareAndSwap(queued, taken) {
			rs = append(rs, e.r)
			kept = append(kept, e)
			n += q.Size(e.r)
		}
	}
	if len(rs) == 0 {
		return
	}
	start := time.Now()
	q.Commit(rs)
	took := time.Since(start)
	// The callers have their answer first: Committed (metrics, a WAL
	// checkpoint) runs after, before the committer takes the next batch.
	for _, e := range kept {
		close(e.done)
	}
	if q.Committed != nil {
		q.Committed(n, len(rs), took)
	}
}
