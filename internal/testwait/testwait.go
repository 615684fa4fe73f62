// Package testwait is the one way Trail's tests wait for something that
// happens in the background: they poll a condition until it holds, and
// fail naming what they waited for when it does not within the timeout.
//
//	testwait.For(t, 20*time.Second, "4 events delivered", func() bool {
//		return len(rcv.Events()) >= 4
//	})
//
// Timeouts are generous (tens of seconds): they only bound a failing
// test, and CI runs the suite with -race on two cores. A test that must
// show that nothing happened waits on a worker's test signal (an OnRound
// or OnIdle hook) instead of sleeping.
package testwait

import (
	"errors"
	"testing"
	"time"
)

// Polls start MinInterval apart, and the interval doubles up to
// MaxInterval: a condition that holds soon is seen soon, and a long wait
// on a costly condition (a whole log read over HTTP) does not load the
// machine the other tests share.
const (
	MinInterval = 5 * time.Millisecond
	MaxInterval = 200 * time.Millisecond
)

// For polls cond until it reports true, and fails the test with
// t.Fatalf, naming what, if it does not within timeout. It must be called
// from the test's goroutine.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	err := Poll(timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// ForNil polls cond until it returns nil, and fails the test with
// t.Fatalf, naming what and the last error, if it does not within
// timeout. It must be called from the test's goroutine.
func ForNil(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(timeout, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
	}
}

var errNotYet = errors.New("the condition does not hold yet")

// Poll polls cond until it returns nil, and returns nil; or, if it does
// not within timeout, the last error it returned. It does not touch a
// testing.T, so goroutines other than the test's may use it.
func Poll(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	interval := MinInterval
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(min(interval, time.Until(deadline)))
		interval = min(2*interval, MaxInterval)
	}
}
