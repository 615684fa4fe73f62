package lifecycle

import (
	"context"
	"sync/atomic"
	"testing"
)

func TestGroup_StartStop(t *testing.T) {
	var g Group
	g.Stop() // before Start: nothing to do
	var running, stopped atomic.Int32
	started := make(chan struct{}, 2)
	loop := func(ctx context.Context) {
		running.Add(1)
		started <- struct{}{}
		<-ctx.Done()
		stopped.Add(1)
	}
	var g2 Group
	if !g2.Start(context.Background(), loop, loop) {
		t.Fatal("first Start refused")
	}
	if g2.Start(context.Background(), loop) {
		t.Fatal("second Start ran again")
	}
	<-started
	<-started
	g2.Stop()
	if stopped.Load() != 2 {
		t.Fatalf("Stop returned with %d of 2 loops stopped", stopped.Load())
	}
	g2.Stop() // idempotent
	if g2.Start(context.Background(), loop) || running.Load() != 2 {
		t.Fatal("a stopped group started again")
	}
	select {
	case <-g2.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
}

func TestGroup_ParentContextStops(t *testing.T) {
	var g Group
	ctx, cancel := context.WithCancel(context.Background())
	g.Start(ctx, func(ctx context.Context) { <-ctx.Done() })
	cancel()
	<-g.Done() // the loop returned without Stop
	g.Stop()
}
