package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/testwait"
)

// recorder is a Commit that records its batches and can be held.
type recorder struct {
	mu      sync.Mutex
	batches [][]int
	started chan struct{} // a value per batch begun
	release chan struct{} // a value lets one batch finish
}

func newRecorder() *recorder {
	return &recorder{started: make(chan struct{}, 100), release: make(chan struct{}, 100)}
}

func (r *recorder) commit(batch []int) {
	r.started <- struct{}{}
	<-r.release
	r.mu.Lock()
	r.batches = append(r.batches, batch)
	r.mu.Unlock()
}

func (r *recorder) all() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, b := range r.batches {
		out = append(out, b...)
	}
	return out
}

func newQueue(t *testing.T, rec *recorder, length int) *Queue[int] {
	q := &Queue[int]{Size: func(n int) int { return n }, MaxEvents: 10, Commit: rec.commit}
	q.Start(length, 1)
	t.Cleanup(func() {
		for range 100 {
			rec.release <- struct{}{}
		}
		q.Stop()
	})
	return q
}

// queuedLen waits until n requests wait in the queue.
func queuedLen(t *testing.T, q *Queue[int], n int) {
	t.Helper()
	testwait.ForNil(t, 10*time.Second, fmt.Sprintf("%d requests in the queue", n), func() error {
		if len(q.ch) != n {
			return fmt.Errorf("queue holds %d requests, want %d", len(q.ch), n)
		}
		return nil
	})
}

func TestQueue_GroupsUpToMaxEvents(t *testing.T) {
	rec := newRecorder()
	q := newQueue(t, rec, 100)
	errs := make(chan error, 10)
	go func() { errs <- q.Do(context.Background(), 1) }()
	<-rec.started // the first batch holds the committer
	for i, n := range []int{6, 5, 3} {
		go func() { errs <- q.Do(context.Background(), n) }()
		queuedLen(t, q, i+1)
	}
	rec.release <- struct{}{}
	<-rec.started
	rec.release <- struct{}{}
	<-rec.started
	rec.release <- struct{}{}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.batches) != 3 || len(rec.batches[1]) != 2 || len(rec.batches[2]) != 1 {
		t.Fatalf("batches %v: want [1] then 6+5 (10 events reached) then 3", rec.batches)
	}
}

func TestQueue_CancelledBeforeTakenIsNeverWritten(t *testing.T) {
	rec := newRecorder()
	q := newQueue(t, rec, 100)
	go q.Do(context.Background(), 1)
	<-rec.started
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- q.Do(ctx, 7) }()
	queuedLen(t, q, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || trail.ErrorCode(err) != trail.EUNAVAILABLE {
		t.Fatalf("Do = %v, want EUNAVAILABLE and context.Canceled", err)
	}
	rec.release <- struct{}{}
	rec.release <- struct{}{} // for the next batch
	if err := q.Do(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if got := rec.all(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("written %v: want 1 and 2, never the withdrawn 7", got)
	}
}

func TestQueue_FullAndStopped(t *testing.T) {
	rec := newRecorder()
	q := newQueue(t, rec, 1)
	go q.Do(context.Background(), 1)
	<-rec.started
	go q.Do(context.Background(), 2)
	queuedLen(t, q, 1)
	if err := q.Do(context.Background(), 3); trail.ErrorCode(err) != trail.EUNAVAILABLE {
		t.Fatalf("full queue: %v, want EUNAVAILABLE", err)
	}
	go func() { rec.release <- struct{}{}; rec.release <- struct{}{} }()
	q.Stop()
	q.Stop() // idempotent
	if got := rec.all(); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("written %v: want 1 and the queued 2 written before Stop returned", got)
	}
	if err := q.Do(context.Background(), 4); trail.ErrorCode(err) != trail.EUNAVAILABLE {
		t.Fatalf("after Stop: %v, want EUNAVAILABLE", err)
	}
}
