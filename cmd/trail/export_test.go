package main

import (
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/internal/testwait"
)

// TestExport_SurvivesRestart: an export created while no checkpoint can
// cover its events stays pending; trail serve is killed (SIGKILL) and
// restarted on the same database, and the export finishes there, after
// its dead holder's lease. Then trail export, the CLI, exports through
// the API: CSV with filters, NDJSON that trail verify accepts, and clear
// failures. On SQLite and on PostgreSQL.
func TestExport_SurvivesRestart(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); testExportRestart(t, "") })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testExportRestart(t, pgtest.URL(t)) })
}

func testExportRestart(t *testing.T, databaseURL string) {
	dir := t.TempDir()
	env := []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + dir, "TRAIL_DATABASE_URL=" + databaseURL}
	// No checkpoint for an hour: the export waits for one.
	p := startServe(t, env, "--checkpoint-interval", "1h")
	// Its first round runs at start: wait for it, so that nothing this
	// test writes can fall into it.
	if err := testwait.Poll(30*time.Second, func() error {
		if !strings.Contains(getText(t, p.URL+"/metrics", testAdminKey), `trail_integrator_rounds_total{outcome="ok"} 1`) {
			return errors.New("no round of the integrator yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, p.Stderr())
	}
	const org = "org_export_cli"
	if code, body := post(t, p.URL+"/organizations", testAdminKey, map[string]any{"id": org, "name": "Export CLI"}); code != 201 {
		t.Fatalf("%d %v", code, body)
	}
	var events []any
	for i := range 120 {
		events = append(events, event(i))
	}
	if code, body := post(t, p.URL+"/audit_logs/events/batch", testAdminKey, map[string]any{"organization_id": org, "events": events}); code != 200 {
		t.Fatalf("%d %v", code, body)
	}
	wide := map[string]any{"organization_id": org, "range_start": "2020-01-01T00:00:00Z", "range_end": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}
	code, ex := post(t, p.URL+"/audit_logs/exports", testAdminKey, wide)
	if code != 201 {
		t.Fatalf("%d %v", code, ex)
	}
	id := ex["id"].(string)
	time.Sleep(time.Second)
	if _, got := get(t, p.URL+"/audit_logs/exports/"+id, testAdminKey); got["state"] != "pending" {
		t.Fatalf("before the restart: %v", got)
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait()

	p = startServe(t, env)
	var got map[string]any
	testwait.Poll(90*time.Second, func() error {
		if _, got = get(t, p.URL+"/audit_logs/exports/"+id, testAdminKey); got["state"] == "pending" {
			return errors.New("pending")
		}
		return nil
	})
	// organization.created, the 120 events and the export's own
	// audit_log_export.created.
	if got["state"] != "ready" || got["rows"] != float64(122) {
		t.Fatalf("after the restart: %v\n%s", got, p.Stderr())
	}
	if m := getText(t, p.URL+"/metrics", testAdminKey); !strings.Contains(m, `trail_exports_total{state="ready"} 1`) || !strings.Contains(m, "trail_export_rows_total 122") {
		t.Fatalf("metrics after the export:\n%s", m)
	}

	cli := map[string]string{"TRAIL_URL": p.URL, "TRAIL_API_KEY": testAdminKey}
	out := filepath.Join(t.TempDir(), "sched.csv")
	_, stderr, err := runMain(t, cli, "export", "--org", org, "--from", "2020-01-01", "--actor-ids", "user_3,user_4", "-o", out)
	if err != nil {
		t.Fatalf("trail export: %v\n%s", err, stderr)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 1+14 { // user_3 and user_4: 7 events each of 120 (i%17)
		t.Fatalf("%d records, %v\n%s", len(recs), err, stderr)
	}
	for _, r := range recs[1:] {
		if r[7] != "user_3" && r[7] != "user_4" {
			t.Fatalf("row %q", r)
		}
	}
	if !strings.Contains(stderr, "14 rows") || !strings.Contains(stderr, "exported: 14 rows") {
		t.Fatalf("progress: %s", stderr)
	}

	nd := filepath.Join(t.TempDir(), "all.ndjson")
	if _, stderr, err := runMain(t, cli, "export", "--org", org, "--from", "2020-01-01", "--format", "ndjson", "-o", nd); err != nil {
		t.Fatalf("trail export ndjson: %v\n%s", err, stderr)
	}
	key := getText(t, p.URL+"/audit_logs/log_key", testAdminKey)
	stdout, stderr, err := runMain(t, nil, "verify", "--key", key, "--checkpoint", nd+".checkpoint", nd)
	if err != nil || !strings.Contains(stdout, "the lines are the whole log") {
		t.Fatalf("verify: %v\n%s%s", err, stdout, stderr)
	}

	// Gzipped, it verifies as it is.
	gz := filepath.Join(t.TempDir(), "all.ndjson.gz")
	if _, stderr, err := runMain(t, cli, "export", "--org", org, "--from", "2020-01-01", "--format", "ndjson", "--gzip", "-o", gz); err != nil {
		t.Fatalf("trail export ndjson gzip: %v\n%s", err, stderr)
	}
	if stdout, stderr, err := runMain(t, nil, "verify", "--key", key, "--checkpoint", gz+".checkpoint", gz); err != nil || !strings.Contains(stdout, "the lines are the whole log") {
		t.Fatalf("verify gzip: %v\n%s%s", err, stdout, stderr)
	}

	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"NoKey", map[string]string{"TRAIL_URL": p.URL}, []string{"--org", org, "--from", "2020-01-01"}, "TRAIL_API_KEY"},
		{"WrongKey", map[string]string{"TRAIL_URL": p.URL, "TRAIL_API_KEY": "sk_nope_nope_nope_nope_nope_nope_nope"}, []string{"--org", org, "--from", "2020-01-01"}, "API key"},
		{"UnknownOrg", cli, []string{"--org", "org_nope", "--from", "2020-01-01"}, "Organization not found"},
		{"BadRange", cli, []string{"--org", org, "--from", "2026-02-01", "--to", "2026-01-01"}, "Invalid date range (range_end: must be after range_start)"},
		{"BadAction", cli, []string{"--org", org, "--from", "2020-01-01", "--actions", "a b"}, "actions"},
		{"Unreachable", map[string]string{"TRAIL_URL": "http://127.0.0.1:1", "TRAIL_API_KEY": testAdminKey}, []string{"--org", org, "--from", "2020-01-01"}, "connection refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runMain(t, c.env, append([]string{"export"}, c.args...)...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
