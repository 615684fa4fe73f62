package bench

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/postgres"
)

// validConfig is the default configuration with what the caller sets.
func validConfig() Config {
	c := DefaultConfig()
	c.Executable = "/bin/true"
	c.Open = func(context.Context, string, string) (*DB, error) { return nil, errors.New("not opened") }
	return c
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string // "" for valid
	}{
		{"OK", func(*Config) {}, ""},
		{"OKPostgres", func(c *Config) { c.Drivers, c.DatabaseURL = []string{"postgres"}, "postgres://u@h/db" }, ""},
		{"OKPostgresDefaultDrivers", func(c *Config) { c.DatabaseURL = "postgresql://u@h/db" }, ""},
		{"OKIngestWithoutOpen", func(c *Config) { c.Scenarios, c.Open = []string{"single", "batch", "lag", "streams"}, nil }, ""},
		{"ErrNoDatabaseURL", func(c *Config) { c.Drivers = []string{"sqlite", "postgres"} }, ErrNoDatabaseURL.Error()},
		{"ErrNotPostgresURL", func(c *Config) { c.Drivers, c.DatabaseURL = []string{"postgres"}, "sqlite:///tmp/x.db" }, "want postgres://…, not sqlite://…"},
		{"ErrUnknownDriver", func(c *Config) { c.Drivers = []string{"mysql"} }, `unknown driver "mysql"`},
		{"ErrUnknownScenario", func(c *Config) { c.Scenarios = []string{"single", "nap"} }, `unknown scenario "nap"`},
		{"ErrNodes", func(c *Config) { c.Nodes = []int{1, 0} }, "node count 0"},
		{"ErrNoExecutable", func(c *Config) { c.Executable = "" }, "no trail executable"},
		{"ErrNoOpen", func(c *Config) { c.Scenarios, c.Open = []string{"export"}, nil }, "scenario export pre-loads a database"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.change(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Validate: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestRun_ErrNoDatabaseURL: a PostgreSQL scenario with no server fails at
// once, before anything runs or is printed; there is no default server.
func TestRun_ErrNoDatabaseURL(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Drivers = []string{"postgres"}
	var out bytes.Buffer
	if err := Run(context.Background(), c, &out); !errors.Is(err, ErrNoDatabaseURL) {
		t.Fatalf("Run: %v, want ErrNoDatabaseURL", err)
	}
	if out.Len() > 0 {
		t.Fatalf("Run printed %q before failing", out.String())
	}
}

func TestConfig_plan(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Scenarios, c.Drivers, c.Nodes, c.DatabaseURL = []string{"batch", "query", "lag"}, []string{"sqlite", "postgres"}, []int{1, 2}, "postgres://u@h/db"
	want := []step{
		{"batch", "sqlite", 1}, {"batch", "postgres", 1}, {"batch", "postgres", 2},
		{"query", "sqlite", 1}, {"query", "postgres", 1},
		{"lag", "sqlite", 1}, {"lag", "postgres", 1}, {"lag", "postgres", 2},
	}
	if got := c.plan(); !slices.Equal(got, want) {
		t.Fatalf("plan = %v, want %v", got, want)
	}
	c = validConfig()
	if got := c.drivers(); !slices.Equal(got, []string{"sqlite"}) {
		t.Fatalf("default drivers %v, want sqlite", got)
	}
}

func TestLatencies_pct(t *testing.T) {
	t.Parallel()
	var l latencies
	if got := l.pct(.5); got != 0 {
		t.Fatalf("pct of none = %v, want 0", got)
	}
	for i := 100; i >= 1; i-- {
		l.add(time.Duration(i) * time.Millisecond)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{0, time.Millisecond}, {.5, 50 * time.Millisecond}, {.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := l.pct(tt.p); got != tt.want {
			t.Errorf("pct(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := ms(1500 * time.Microsecond); got != "1.50 ms" {
		t.Errorf("ms = %q, want 1.50 ms", got)
	}
}

func TestParseServerTiming(t *testing.T) {
	t.Parallel()
	got := parseServerTiming("list;dur=12.5, histogram;dur=3")
	want := map[string]time.Duration{"list": 12500 * time.Microsecond, "histogram": 3 * time.Millisecond}
	if !maps.Equal(got, want) {
		t.Fatalf("parseServerTiming = %v, want %v", got, want)
	}
}

// TestLagLatencies: each accepted batch is matched with the first
// checkpoint seen that covers its highest index.
func TestLagLatencies(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	acks := [][]accepted{{
		{last: 9, at: t0, n: 10},
		{last: 19, at: t0.Add(time.Second), n: 10},
		{last: 29, at: t0.Add(2 * time.Second), n: 10}, // never in a checkpoint
	}}
	seen := [][]sighting{{{size: 15, at: t0.Add(100 * time.Millisecond)}, {size: 20, at: t0.Add(1300 * time.Millisecond)}}}
	lat, events, missing := lagLatencies(acks, seen)
	if events != 30 || missing != 10 || lat.count() != 20 {
		t.Fatalf("events %d, missing %d, latencies %d; want 30, 10, 20", events, missing, lat.count())
	}
	if got := lat.pct(0); got != 100*time.Millisecond {
		t.Errorf("lowest lag %v, want 100ms", got)
	}
	if got := lat.pct(1); got != 300*time.Millisecond {
		t.Errorf("highest lag %v, want 300ms", got)
	}
	if a := acceptedBatch([]byte(`{"data":[{"index":4},{"error":{}},{"index":7}]}`), t0); a.last != 7 || a.n != 2 {
		t.Errorf("acceptedBatch = %+v, want last 7 of 2", a)
	}
}

// TestRunner_newTarget_Postgres: an ingest scenario's PostgreSQL target is
// a fresh schema, made and dropped through the postgres driver; a loaded
// one can be analyzed.
func TestRunner_newTarget_Postgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := validConfig()
	c.DatabaseURL = pgtest.ServerURL(t)
	var log bytes.Buffer
	r := &runner{c: c, log: &log}
	tg, cleanup, err := r.newTarget(ctx, "postgres", 2)
	if err != nil {
		t.Fatal(err)
	}
	if tg.label() != "postgres, 2 node(s)" || !strings.Contains(tg.url, "search_path=trail_bench_") {
		t.Fatalf("target %+v", tg)
	}
	db := postgres.NewDB(tg.url)
	if err := db.Open(ctx); err != nil {
		cleanup()
		t.Fatal(err)
	}
	if err := postgres.Analyze(ctx, tg.url); err != nil {
		t.Errorf("Analyze: %v", err)
	}
	db.Close()
	schema := strings.TrimPrefix(tg.url[strings.Index(tg.url, "search_path="):], "search_path=")
	cleanup()
	if log.Len() > 0 {
		t.Fatalf("cleanup: %s", log.String())
	}
	if _, err := os.Stat(tg.dir); !os.IsNotExist(err) {
		t.Errorf("data directory %s not removed: %v", tg.dir, err)
	}
	conn, err := pgx.Connect(ctx, c.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, schema).Scan(&n); err != nil || n != 0 {
		t.Fatalf("schema %s after cleanup: %d, %v", schema, n, err)
	}
	if _, err := postgres.CreateSchema(ctx, c.DatabaseURL, "Robert'); DROP TABLE x; --"); err == nil {
		t.Error("CreateSchema took a name that needs quoting")
	}
}

// A server that exits before it serves is reported as such (not as the
// two-minute timeout), with what it wrote to stderr.
func TestStartServer_ExitReportsOutput(t *testing.T) {
	t.Parallel()
	script := t.TempDir() + "/trail"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'open database: connection refused' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := validConfig()
	c.Executable = script
	r := &runner{c: c}
	_, err := r.startServer(context.Background(), t.TempDir(), "")
	if err == nil {
		t.Fatal("startServer: no error for a server that exited")
	}
	for _, want := range []string{"exited before serving", "exit status 3", "open database: connection refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}
