package jsonschema

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/testwait"
)

// schemaStore is a SchemaService of fixed schemas that counts reads.
type schemaStore struct {
	trail.SchemaService
	schemas map[string]*trail.Schema // action → its version 1
	finds   atomic.Int64
}

func (s *schemaStore) FindSchema(ctx context.Context, action string, version int) (*trail.Schema, error) {
	s.finds.Add(1)
	if sc, ok := s.schemas[action]; ok && version == 1 {
		return sc, nil
	}
	return nil, trail.Errorf(trail.ENOTFOUND, "no schema")
}

func (s *schemaStore) HasSchemas(ctx context.Context, action string) (bool, error) {
	_, ok := s.schemas[action]
	return ok, nil
}

func newSchema(action, metadata string) *trail.Schema {
	return &trail.Schema{Action: action, Version: 1, Targets: []trail.SchemaTarget{{Type: "team"}}, Metadata: json.RawMessage(metadata)}
}

// TestValidator_CompilesOnce: 50 events of a new schema version that
// arrive together wait for one compile (and one read of the schema).
func TestValidator_CompilesOnce(t *testing.T) {
	t.Parallel()
	store := &schemaStore{schemas: map[string]*trail.Schema{
		"user.signed_in": newSchema("user.signed_in", `{"type":"object","required":["ip"]}`)}}
	v := NewValidator(store)
	var compiles atomic.Int64
	release := make(chan struct{})
	v.onCompile = func() {
		compiles.Add(1)
		<-release // the others arrive meanwhile
	}
	var started, done sync.WaitGroup
	problems := make([][]trail.Problem, 50)
	errs := make([]error, 50)
	for i := range 50 {
		started.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			started.Done()
			problems[i], errs[i] = v.ValidateEvent(context.Background(), &trail.EventInput{Action: "user.signed_in", Version: 1,
				Targets: []trail.Target{{Type: "team", ID: "t"}}})
		}()
	}
	started.Wait()
	close(release)
	done.Wait()
	if n := compiles.Load(); n != 1 {
		t.Errorf("%d compiles, want 1", n)
	}
	if n := store.finds.Load(); n != 1 {
		t.Errorf("%d reads of the schema, want 1", n)
	}
	for i := range 50 {
		if errs[i] != nil || len(problems[i]) != 1 || problems[i][0].Path != "/metadata" {
			t.Fatalf("event %d: %v %v, want the missing ip", i, problems[i], errs[i])
		}
	}
	// Cached: another event compiles nothing.
	v.ValidateEvent(context.Background(), &trail.EventInput{Action: "user.signed_in", Version: 1, Targets: []trail.Target{{Type: "team", ID: "t"}}})
	if n := compiles.Load(); n != 1 {
		t.Errorf("%d compiles after the cache, want 1", n)
	}
}

// TestValidator_AbandonedCompiles: a compile that outlasts the timeout is
// refused as too complex and goes on alone: the same schema checked again
// meanwhile joins it rather than compile it again, compiles are bounded
// (the next one is a 503), and a stored version's events wait for its one
// compile, which is then cached.
func TestValidator_AbandonedCompiles(t *testing.T) {
	t.Parallel()
	slow := newSchema("slow.action", `{"type":"object","title":"slow"}`)
	store := &schemaStore{schemas: map[string]*trail.Schema{"slow.action": slow}}
	v := NewValidator(store)
	v.CompileTimeout = 50 * time.Millisecond
	var compiles atomic.Int64
	release := make(chan struct{})
	v.onCompile = func() {
		compiles.Add(1)
		<-release
	}
	for range 2 {
		err := v.Check(slow)
		if trail.ErrorCode(err) != trail.ESCHEMATOOCOMPLEX || trail.ErrorProblems(err)[0].Path != "/metadata" {
			t.Fatalf("a compile past the timeout: %v %v", err, trail.ErrorProblems(err))
		}
	}
	if n := compiles.Load(); n != 1 {
		t.Fatalf("%d compiles of one schema, want 1", n)
	}
	// The event's lookup joins the same compile.
	in := &trail.EventInput{Action: "slow.action", Version: 1, Targets: []trail.Target{{Type: "team", ID: "t"}}}
	if _, err := v.ValidateEvent(context.Background(), in); trail.ErrorCode(err) != trail.EUNAVAILABLE {
		t.Fatalf("an event while its schema compiles: %v", err)
	}
	// MaxCompiles held by abandoned compiles: the next schema waits,
	// then is told to come back.
	for i := range MaxCompiles - 1 {
		if err := v.Check(newSchema("other", fmt.Sprintf(`{"title":"%d"}`, i))); trail.ErrorCode(err) != trail.ESCHEMATOOCOMPLEX {
			t.Fatalf("compile %d: %v", i, err)
		}
	}
	if err := v.Check(newSchema("other", `{"title":"one too many"}`)); trail.ErrorCode(err) != trail.EUNAVAILABLE {
		t.Fatalf("a compile past MaxCompiles: %v", err)
	}
	if n := compiles.Load(); n != MaxCompiles {
		t.Fatalf("%d compiles running, want %d", n, MaxCompiles)
	}
	close(release)
	// The abandoned compile cached the version: its events are checked
	// with no other compile.
	testwait.For(t, 10*time.Second, "the abandoned compile to cache its version", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		_, ok := v.compiled[schemaKey{"slow.action", 1}]
		return ok
	})
	before := compiles.Load()
	if ps, err := v.ValidateEvent(context.Background(), in); err != nil || len(ps) != 0 {
		t.Fatalf("an event once compiled: %v %v", ps, err)
	}
	if n := compiles.Load(); n != before {
		t.Errorf("compiled again: %d compiles, had %d", n, before)
	}
}

// TestValidator_StoredTooComplex: a version stored before the limits is
// refused for its events without being compiled, and not read again.
func TestValidator_StoredTooComplex(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat(`{"items":`, 40) + `{}` + strings.Repeat(`}`, 40)
	store := &schemaStore{schemas: map[string]*trail.Schema{"deep.action": newSchema("deep.action", deep)}}
	v := NewValidator(store)
	var compiles atomic.Int64
	v.onCompile = func() { compiles.Add(1) }
	in := &trail.EventInput{Action: "deep.action", Version: 1, Targets: []trail.Target{{Type: "team", ID: "t"}}}
	for range 3 {
		if _, err := v.ValidateEvent(context.Background(), in); trail.ErrorCode(err) != trail.ESCHEMATOOCOMPLEX {
			t.Fatalf("an event of a too deep stored schema: %v", err)
		}
	}
	if compiles.Load() != 0 || store.finds.Load() != 1 {
		t.Errorf("%d compiles, %d reads; want 0 and 1", compiles.Load(), store.finds.Load())
	}
}
