package testwait

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	if err := Poll(10*time.Second, func() error {
		if n.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || n.Load() != 3 {
		t.Fatalf("Poll: %v after %d calls", err, n.Load())
	}
	want := errors.New("never")
	if err := Poll(30*time.Millisecond, func() error { return want }); err != want {
		t.Fatalf("Poll of a condition that never holds: %v", err)
	}
}

func TestFor(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	For(t, 10*time.Second, "the third call", func() bool { return n.Add(1) >= 3 })
	ForNil(t, 10*time.Second, "nil", func() error { return nil })
}
