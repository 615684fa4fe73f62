package export

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/testwait"
)

// noExports is an export service with nothing pending; it counts claims.
type noExports struct {
	trail.ExportService
	mu     sync.Mutex
	claims int
}

func (s *noExports) ClaimExport(context.Context, time.Duration) (*trail.Export, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.claims++
	return nil, nil
}

func (s *noExports) ExpireExports(context.Context, time.Time) (int, error) { return 0, nil }

// TestWorker_WakeStartsARound: Wake starts a round of claims at once,
// not at the next poll, and a round with nothing pending claims nothing;
// OnRound tells when one has passed, with no sleep.
func TestWorker_WakeStartsARound(t *testing.T) {
	t.Parallel()
	svc := &noExports{}
	var mu sync.Mutex
	rounds := 0
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return rounds
	}
	w := &Worker{Exports: svc, PollInterval: time.Hour, ExpireEvery: time.Hour,
		OnRound: func() { mu.Lock(); rounds++; mu.Unlock() }}
	w.Start(context.Background())
	defer w.Stop()
	testwait.For(t, 30*time.Second, "the first round", func() bool { return count() >= 1 })
	w.Wake()
	testwait.For(t, 30*time.Second, "a round after Wake (the poll is an hour away)", func() bool { return count() >= 2 })
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if svc.claims != 2 {
		t.Fatalf("%d claims in two rounds with nothing pending", svc.claims)
	}
}
