package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trail-audit/trail/internal/pgtest"
)

// TestPostgres_DumpRestore: a loaded Trail schema is dumped with pg_dump
// while trail serve runs, restored with pg_restore into a new database,
// and there trail fsck passes, and an export made from the restored
// database verifies with trail verify, as the whole log, and against the
// signed checkpoint taken before the dump (no history rewritten). Issue
// 20, point 4; docs/OPERATIONS.md.
func TestPostgres_DumpRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("TRAIL_REQUIRE_POSTGRES") == "1" {
				t.Fatalf("%s is required (TRAIL_REQUIRE_POSTGRES=1): %v", tool, err)
			}
			t.Skipf("%s: %v", tool, err)
		}
	}
	u := pgtest.URL(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	schema := parsed.Query().Get("search_path")
	dir := t.TempDir()
	env := []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + dir, "TRAIL_DATABASE_URL=" + u, "TRAIL_RATE_LIMIT=0"}
	p := startServe(t, env, "--checkpoint-interval", "200ms")
	t.Cleanup(func() { p.cmd.Process.Kill(); p.wait() })
	const org = "org_pgdump"
	if code, body := post(t, p.URL+"/organizations", testAdminKey, map[string]any{"id": org, "name": "Dump"}); code != 201 {
		t.Fatalf("%d %v", code, body)
	}
	for b := range 5 {
		var events []any
		for i := range 100 {
			events = append(events, event(b*100+i))
		}
		if code, body := post(t, p.URL+"/audit_logs/events/batch", testAdminKey, map[string]any{"organization_id": org, "events": events}); code != 200 {
			t.Fatalf("%d %v", code, body)
		}
	}
	// organization.created and the 500 events.
	before := filepath.Join(t.TempDir(), "before.checkpoint")
	if err := os.WriteFile(before, []byte(waitCheckpointText(t, p.URL, org, 501)), 0o600); err != nil {
		t.Fatal(err)
	}
	key := getText(t, p.URL+"/audit_logs/log_key", testAdminKey)

	// The dump, taken while the server serves.
	base := &url.URL{Scheme: "postgres", User: parsed.User, Host: parsed.Host, Path: parsed.Path, RawQuery: "sslmode=disable"}
	dump := filepath.Join(t.TempDir(), "trail.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--no-owner", "--schema="+schema, "--file="+dump, base.String()).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	p.cmd.Process.Kill()
	p.wait()

	// Into a new database.
	newDB := createDatabase(t, base, "trail_restore_")
	target := *base
	target.Path = "/" + newDB
	if out, err := exec.Command("pg_restore", "--no-owner", "--exit-on-error", "--dbname="+target.String(), dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	q := target.Query()
	q.Set("search_path", schema)
	target.RawQuery = q.Encode()
	restored := target.String()

	if out, errOut, err := runMain(t, map[string]string{"TRAIL_DATA_DIR": dir, "TRAIL_DATABASE_URL": restored}, "fsck"); err != nil {
		t.Fatalf("fsck of the restored database: %v\n%s%s", err, out, errOut)
	}
	r := startServe(t, []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + dir, "TRAIL_DATABASE_URL=" + restored, "TRAIL_RATE_LIMIT=0"}, "--checkpoint-interval", "200ms")
	t.Cleanup(func() { r.cmd.Process.Kill(); r.wait() })
	if got := readLog(t, r.URL, org); len(got) < 501 {
		t.Fatalf("the restored database lists %d events, want at least 501", len(got))
	}
	nd := filepath.Join(t.TempDir(), "restored.ndjson")
	cli := map[string]string{"TRAIL_URL": r.URL, "TRAIL_API_KEY": testAdminKey}
	if _, stderr, err := runMain(t, cli, "export", "--org", org, "--from", "2020-01-01", "--to", time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "--format", "ndjson", "-o", nd); err != nil {
		t.Fatalf("trail export: %v\n%s", err, stderr)
	}
	stdout, stderr, err := runMain(t, nil, "verify", "--key", key, "--checkpoint", nd+".checkpoint", "--previous", before, nd)
	if err != nil || !strings.Contains(stdout, "the lines are the whole log") || !strings.Contains(stdout, "previous checkpoint is consistent") {
		t.Fatalf("verify against the checkpoint taken before the dump: %v\n%s%s", err, stdout, stderr)
	}
}

// createDatabase creates a database named prefix and random hex on the
// server of base, dropped when the test ends, and returns its name.
func createDatabase(t *testing.T, base *url.URL, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, base.String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.Exec(ctx, `CREATE DATABASE `+name)
	admin.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin, err := pgx.Connect(ctx, base.String())
		if err == nil {
			_, err = admin.Exec(ctx, `DROP DATABASE `+name+` WITH (FORCE)`)
			admin.Close(ctx)
		}
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	return name
}
