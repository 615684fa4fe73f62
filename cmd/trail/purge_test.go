package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trail-audit/trail/internal/pgtest"
)

// TestPurge_Fake is the attack of issue 16: someone with write access to
// the database "purges" a fresh event as retention would (its id and index
// kept in purged_events, its row deleted). The API reads it as purged, but
// trail fsck and trail verify of a new NDJSON export refuse it, naming its
// index. On SQLite and on PostgreSQL.
func TestPurge_Fake(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); testPurgeFake(t, "") })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testPurgeFake(t, pgtest.URL(t)) })
}

func testPurgeFake(t *testing.T, databaseURL string) {
	dir := t.TempDir()
	env := map[string]string{"TRAIL_DATA_DIR": dir, "TRAIL_DATABASE_URL": databaseURL}
	s := openServer(t, dir, databaseURL)
	defer s.Close()
	u := s.HTTP.URL()
	const org = "org_fake_purge"
	if code, body := post(t, u+"/organizations", testAdminKey, map[string]any{"id": org, "name": "Fake purge"}); code != 201 {
		t.Fatalf("%d %v", code, body)
	}
	var evs []any
	for i := 0; i < 20; i++ {
		evs = append(evs, event(i))
	}
	if code, body := post(t, u+"/audit_logs/events/batch", testAdminKey, map[string]any{"organization_id": org, "events": evs}); code != 200 {
		t.Fatalf("batch: %d %v", code, body)
	}
	waitCheckpointText(t, u, org, 21)
	_, body := get(t, u+"/audit_logs/events?organization_id="+org+"&order=asc&limit=10", testAdminKey)
	victim := body["data"].([]any)[5].(map[string]any)["id"].(string)

	where := fmt.Sprintf(`organization_id = '%s' AND idx = 5`, org)
	exec := sqliteExec(t, dir)
	if databaseURL != "" {
		exec = pgExec(t, databaseURL)
	}
	exec(`INSERT INTO purged_events (organization_id, idx, id, occurred_at) SELECT organization_id, idx, id, occurred_at FROM events WHERE ` + where)
	exec(`DELETE FROM events WHERE ` + where)

	if code, ev := get(t, u+"/audit_logs/events/"+victim, testAdminKey); code != 200 || ev["purged"] != true || ev["purge_evidence"] != nil {
		t.Fatalf("the event as the API reads it: %d %v", code, ev)
	}
	out, _, err := runMain(t, env, "fsck", "--org", org)
	if err == nil || !strings.Contains(out, "FAIL "+org+": event index 5: purged without evidence") {
		t.Fatalf("fsck of a fake purge: %v\n%s", err, out)
	}
	cli := map[string]string{"TRAIL_URL": u, "TRAIL_API_KEY": testAdminKey}
	nd := filepath.Join(dir, "export.ndjson")
	if _, errOut, err := runMain(t, cli, "export", "--org", org, "--from", "2000-01-01", "--format", "ndjson", "-o", nd); err != nil {
		t.Fatalf("trail export: %v\n%s", err, errOut)
	}
	keyFile := filepath.Join(dir, "key.txt")
	os.WriteFile(keyFile, []byte(getText(t, u+"/audit_logs/log_key", testAdminKey)), 0o600)
	out, errOut, err := runMain(t, nil, "verify", "--key", keyFile, "--checkpoint", nd+".checkpoint", nd)
	if err == nil || !strings.Contains(out+errOut, "(index 5, id "+victim+"): purged without evidence") {
		t.Fatalf("verify of an export with a fake purge: %v\n%s%s", err, out, errOut)
	}
}

// sqliteExec runs statements on a data directory's SQLite database.
func sqliteExec(t *testing.T, dir string) func(q string) {
	db, err := sql.Open("sqlite", filepath.Join(dir, "trail.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// pgExec runs statements on a PostgreSQL test schema.
func pgExec(t *testing.T, u string) func(q string) {
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return func(q string) {
		t.Helper()
		if _, err := pool.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}
