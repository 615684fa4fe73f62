package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail/internal/pgtest"
)

// workosCSV is a WorkOS audit-log CSV export, built to the layout of the
// exports WorkOS's own harness reads (docs/OPERATIONS.md): named columns
// in no fixed order, targets as numbered column groups, metadata as JSON
// cells. Line 4 has no actor id; line 5 occurred two years ago.
const workosCSV = `id,occurred_at,action,version,actor_id,actor_type,actor_name,actor_metadata,target_id_1,target_type_1,target_name_1,target_metadata_1,target_id_2,target_type_2,target_name_2,target_metadata_2,context_location,context_user_agent,metadata
audit_log_event_01HZX1,2026-11-03T09:15:00.000Z,escalation_policy.updated,1,user_01ADA,user,Ada Lovelace,"{""role"":""admin""}",ep_01EU,escalation_policy,EU responders,,team_01SRE,team,SRE,"{""size"":""4""}",203.0.113.9,Mozilla/5.0,"{""before_name"":""EU"",""after_name"":""EU responders""}"
audit_log_event_01HZX2,2026-11-03T10:00:00.000Z,user.role_granted,1,user_01ADA,user,Ada Lovelace,,user_01BOB,user,Bob,,,,,,203.0.113.9,Mozilla/5.0,"{""role"":""owner""}"
audit_log_event_01HZX3,2026-11-04T11:00:00.000Z,schedule.updated,1,,user,Nobody,,sched_1,schedule,Weekend,,,,,,203.0.113.9,curl/8,
audit_log_event_01HZX4,2024-11-04T11:00:00.000Z,schedule.created,1,user_01ADA,user,Ada Lovelace,,sched_1,schedule,Weekend,,,,,,203.0.113.9,curl/8,
`

// workosNDJSON is WorkOS-shaped events, bare and as the API's body; line
// 3 is not JSON and line 4 has an action with a space.
const workosNDJSON = `{"action":"log_stream.created","occurred_at":"2026-11-05T08:00:00Z","actor":{"id":"user_01ADA","type":"user"},"targets":[{"id":"ls_1","type":"log_stream"}],"context":{"location":"198.51.100.1"},"metadata":{"destination":"datadog"}}
{"organization_id":"org_elsewhere","event":{"action":"log_stream.deleted","occurred_at":"2026-11-06T08:00:00Z","actor":{"id":"user_01ADA","type":"user"},"targets":[{"id":"ls_1","type":"log_stream"}],"context":{"location":"198.51.100.1"}}}
{not json
{"action":"bad action","occurred_at":"2026-11-06T08:00:00Z","actor":{"id":"user_01ADA","type":"user"},"targets":[],"context":{"location":"198.51.100.1"}}
`

// TestImport: trail import reads a WorkOS CSV export and WorkOS-shaped
// NDJSON into an organization while trail serve runs, keeps each
// event's time, parties, context and metadata, names each bad line and
// field and goes on, records the run in the organization's log and says
// what is older than the retention; a second run imports nothing; Trail's
// own NDJSON and CSV exports of that organization import into another
// one, event for event (issue 20, point 5).
func TestImport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); testImport(t, "") })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testImport(t, pgtest.URL(t)) })
}

func testImport(t *testing.T, databaseURL string) {
	dir, files := t.TempDir(), t.TempDir()
	env := map[string]string{"TRAIL_DATA_DIR": dir, "TRAIL_DATABASE_URL": databaseURL}
	p := startServe(t, []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + dir, "TRAIL_DATABASE_URL=" + databaseURL, "TRAIL_RATE_LIMIT=0"})
	t.Cleanup(func() { p.cmd.Process.Kill(); p.wait() })
	for _, org := range []string{"org_import", "org_copy"} {
		if code, body := post(t, p.URL+"/organizations", testAdminKey, map[string]any{"id": org, "name": org}); code != 201 {
			t.Fatalf("%d %v", code, body)
		}
	}
	csvFile, ndFile := filepath.Join(files, "workos.csv"), filepath.Join(files, "events.ndjson")
	os.WriteFile(csvFile, []byte(workosCSV), 0o600)
	os.WriteFile(ndFile, []byte(workosNDJSON), 0o600)

	out, errOut, err := runMain(t, env, "import", "--org", "org_import", csvFile, ndFile)
	if err == nil || !strings.Contains(err.Error(), "3 lines were not imported") {
		t.Fatalf("import with 3 bad lines: %v\n%s%s", err, out, errOut)
	}
	for _, want := range []string{"workos.csv:4: /actor/id:", "events.ndjson:3: not a JSON object", "events.ndjson:4: /action:"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the report does not name %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, "imported 5 events into org_import (0 already there, 3 rejected, 0 skipped)") ||
		!strings.Contains(out, "1 of them occurred more than the organization's retention") {
		t.Fatalf("summary:\n%s", out)
	}

	evs := listEvents(t, p.URL, "org_import")
	// organization.created, 5 imported, audit_log_import.completed.
	if len(evs) != 7 {
		t.Fatalf("%d events in org_import, want 7", len(evs))
	}
	ep := evs[1]
	if ep["action"] != "escalation_policy.updated" || ep["occurred_at"] != "2026-11-03T09:15:00Z" {
		t.Fatalf("first imported event: %v", ep)
	}
	actor := ep["actor"].(map[string]any)
	targets := ep["targets"].([]any)
	md := ep["metadata"].(map[string]any)
	ctxm := ep["context"].(map[string]any)
	if actor["name"] != "Ada Lovelace" || actor["metadata"].(map[string]any)["role"] != "admin" || len(targets) != 2 ||
		targets[1].(map[string]any)["name"] != "SRE" || md["after_name"] != "EU responders" || ctxm["user_agent"] != "Mozilla/5.0" {
		t.Fatalf("the WorkOS CSV row did not keep its parts: %v", ep)
	}
	if evs[4]["action"] != "log_stream.created" || evs[5]["action"] != "log_stream.deleted" {
		t.Fatalf("NDJSON events: %v, %v", evs[4]["action"], evs[5]["action"])
	}
	rec := evs[6]
	if rec["action"] != "audit_log_import.completed" || rec["metadata"].(map[string]any)["imported"] != float64(5) ||
		rec["metadata"].(map[string]any)["files"] != "workos.csv, events.ndjson" {
		t.Fatalf("the import's record: %v", rec)
	}

	// Again: nothing new, however long after (the keys are durable: the
	// drivers' conformance test moves the clock past the window).
	out, _, _ = runMain(t, env, "import", "--org", "org_import", csvFile, ndFile)
	if !strings.Contains(out, "imported 0 events into org_import (5 already there, 3 rejected") {
		t.Fatalf("second run:\n%s", out)
	}
	if n := len(listEvents(t, p.URL, "org_import")); n != 8 { // and its own record
		t.Fatalf("%d events after the second run, want 8", n)
	}

	// Trail's own exports of org_import, into org_copy: every event of
	// the source is there again with its time and parties (Trail's own
	// records too: they are history), each once.
	cli := map[string]string{"TRAIL_URL": p.URL, "TRAIL_API_KEY": testAdminKey}
	nd, csvOut := filepath.Join(files, "export.ndjson"), filepath.Join(files, "export.csv")
	to := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	for _, f := range []struct{ name, format string }{{nd, "ndjson"}, {csvOut, "csv"}} {
		if _, stderr, err := runMain(t, cli, "export", "--org", "org_import", "--from", "2020-01-01", "--to", to, "--format", f.format, "-o", f.name); err != nil {
			t.Fatalf("export %s: %v\n%s", f.format, err, stderr)
		}
	}
	out, errOut, err = runMain(t, env, "import", "--org", "org_copy", nd)
	if err != nil {
		t.Fatalf("import of Trail's NDJSON export: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "imported 9 events into org_copy") {
		t.Fatalf("NDJSON export import:\n%s", out)
	}
	// The CSV export holds the same events, and the CSV export's own
	// record. Its rows have no party metadata: the one event that had
	// some is, by content, another event; the other eight are already
	// there (same source id, same content).
	out, errOut, err = runMain(t, env, "import", "--org", "org_copy", csvOut)
	if err != nil {
		t.Fatalf("import of Trail's CSV export: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "imported 2 events into org_copy (8 already there, 0 rejected, 0 skipped)") {
		t.Fatalf("CSV export import:\n%s", out)
	}
	out, _, _ = runMain(t, env, "import", "--org", "org_copy", csvOut)
	if !strings.Contains(out, "imported 0 events into org_copy") {
		t.Fatalf("the CSV export imported twice:\n%s", out)
	}
	copied := listEvents(t, p.URL, "org_copy")
	var found bool
	for _, e := range copied {
		if e["action"] == "escalation_policy.updated" && e["occurred_at"] == "2026-11-03T09:15:00Z" &&
			e["actor"].(map[string]any)["metadata"] != nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("the NDJSON export's event did not arrive with its actor's metadata: %v", copied)
	}
}

// listEvents returns an organization's events, oldest first.
func listEvents(t *testing.T, u, org string) []map[string]any {
	t.Helper()
	var out []map[string]any
	after := ""
	for {
		code, body := get(t, u+"/audit_logs/events?order=asc&limit=1000&organization_id="+org+after, testAdminKey)
		if code != 200 {
			t.Fatalf("%d %v", code, body)
		}
		for _, d := range body["data"].([]any) {
			out = append(out, d.(map[string]any))
		}
		a, _ := body["list_metadata"].(map[string]any)["after"].(string)
		if a == "" {
			return out
		}
		after = "&after=" + a
	}
}
