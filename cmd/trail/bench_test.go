package main

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/trail-audit/trail/internal/pgtest"
)

// runBenchCommand runs the trail binary's bench command with the
// environment less its TRAIL_* variables, plus env.
func runBenchCommand(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(trailBinary(t), append([]string{"bench"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TRAIL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// TestBench runs every scenario of trail bench on a few events: the
// harness (package bench) still starts its servers, pre-loads through the
// driver and prints each scenario's figures.
func TestBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		out, stderr, err := runBenchCommand(t, nil, "--scenarios", "single,batch,import,lag,query,export,streams,ui,fsck",
			"--duration", "1s", "--clients", "4", "--batch-size", "20", "--import-events", "1500", "--lag-rate", "1000", "--query-events", "3000",
			"--queries", "5", "--warmup", "1", "--stream-events", "2000", "--stream-rate", "50", "--data-dir", t.TempDir())
		if err != nil {
			t.Fatalf("trail bench: %v\n%s\n%s", err, out, stderr)
		}
		for _, want := range []string{"trail bench ", "ingest: single events, 4 clients, sqlite", "ingest: batches of 20, 4 clients, sqlite",
			"import by the batch API (sqlite): the same 1500 events into one organization, batches of 20, 4 clients",
			"import (sqlite): trail import of an NDJSON file of 1500 events into a serving Trail",
			"lag: acceptance to a signed checkpoint, 1000 events/s asked in batches of 20, sqlite",
			"query (sqlite): first page (limit 50), 3000 events", "q (two words)", "event with its proof",
			"export (sqlite): every event of one organization (3000 pre-loaded)", "CSV, gzip", "NDJSON with proofs",
			"streams: delivery of", "streams: latency from acceptance to delivery, 50 events/s asked",
			"ui (sqlite): pages of the web UI", "event detail (verified)", "event: step to older", "fsck sqlite   quick", "fsck sqlite   thorough",
			"server peak RSS"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		for _, m := range regexp.MustCompile(`failures (\d+)`).FindAllStringSubmatch(out, -1) {
			if m[1] != "0" {
				t.Errorf("a scenario had %s failed requests:\n%s", m[1], out)
			}
		}
	})
	t.Run("PostgresFromEnvironment", func(t *testing.T) {
		t.Parallel()
		// The server comes from TRAIL_DATABASE_URL, as serve's does.
		env := []string{"TRAIL_DATABASE_URL=" + pgtest.ServerURL(t)}
		out, stderr, err := runBenchCommand(t, env, "--drivers", "postgres", "--scenarios", "batch", "--nodes", "1,2",
			"--duration", "1s", "--batch-size", "20")
		if err != nil {
			t.Fatalf("trail bench: %v\n%s\n%s", err, out, stderr)
		}
		for _, want := range []string{"ingest: batches of 20, 4 clients, postgres, 1 node(s)", "ingest: batches of 20, 4 clients, postgres, 2 node(s)"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("ErrNoDatabaseURL", func(t *testing.T) {
		t.Parallel()
		// There is no default PostgreSQL server: the command says how to
		// name one, and runs nothing.
		out, stderr, err := runBenchCommand(t, nil, "--drivers", "sqlite,postgres", "--scenarios", "batch")
		if err == nil {
			t.Fatalf("trail bench succeeded without a PostgreSQL URL:\n%s", out)
		}
		if !strings.Contains(stderr, "give --database-url postgres://… or set TRAIL_DATABASE_URL") || out != "" {
			t.Fatalf("stdout %q, stderr %q", out, stderr)
		}
	})
}
