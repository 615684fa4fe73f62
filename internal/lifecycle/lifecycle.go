// Package lifecycle is the one start/stop pattern of Trail's background
// workers (the group committers, the integrator, the export worker,
// stream delivery, purge, partition maintenance): Start takes a context
// and runs the worker's loops in goroutines; Stop cancels that context
// and waits until every loop has returned. Both are idempotent and safe
// to call from several goroutines; Stop before Start does nothing.
//
//	var g lifecycle.Group
//	g.Start(ctx, w.loop, w.otherLoop)
//	defer g.Stop()
package lifecycle

import (
	"context"
	"sync"
)

// Group runs a worker's loops from Start until Stop.
type Group struct {
	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	done    chan struct{}
}

// Start runs each loop in its own goroutine with a context that ends at
// Stop or when ctx ends. It reports false (and runs nothing) when the
// group was started or stopped before.
func (g *Group) Start(ctx context.Context, loops ...func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.stopped {
		return false
	}
	g.started = true
	ctx, g.cancel = context.WithCancel(ctx)
	g.done = make(chan struct{})
	for _, loop := range loops {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			loop(ctx)
		}()
	}
	go func() { g.wg.Wait(); close(g.done) }()
	return true
}

// Go runs one more loop in the group while it runs (a worker that starts
// a goroutine per job). It reports false when the group is not running.
func (g *Group) Go(ctx context.Context, f func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.started || g.stopped {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f(ctx)
	}()
	return true
}

// Stop cancels the loops' context and waits until they have returned.
func (g *Group) Stop() {
	g.mu.Lock()
	g.stopped = true
	cancel, done := g.cancel, g.done
	g.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Done is closed when every loop has returned after Start; nil before.
func (g *Group) Done() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}
