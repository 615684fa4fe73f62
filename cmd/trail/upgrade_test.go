package main

import (
	"compress/gzip"
	"context"
	"database/sql"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/postgres"
	"github.com/trail-audit/trail/sqlite"
)

// previousVersion is the commit whose build wrote the fixtures in
// testdata/upgrade (make-fixtures.sh): the last one before issue 19's
// migrations (SQLite 0015–0016, PostgreSQL 0012–0013); SQLite's 0017
// (issue 20) runs over them too.
const previousVersion = "a683a2c"

// TestUpgrade_FromPreviousVersion: a database written by the previous
// version (an organization, 300 events, their checkpoint) is upgraded as
// docs/OPERATIONS.md says (stop, replace the binary, start: trail migrate
// here), on each driver; then fsck passes over it, every event is there
// and the server takes new writes (issue 20, point 6). A refused
// downgrade is TestMigrate_RefusesNewerDatabase.
func TestUpgrade_FromPreviousVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	fixture := func(name string) string { return filepath.Join("testdata", "upgrade", name) }
	keys := func(t *testing.T, driver, dir string) {
		for _, k := range []string{"log-signing.key", "secret.key"} {
			b, err := os.ReadFile(fixture(driver + "-" + previousVersion + "." + k))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, k), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		f, err := os.Open(fixture("sqlite-" + previousVersion + ".db.gz"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "trail.db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, zr); err != nil {
			t.Fatal(err)
		}
		out.Close()
		keys(t, "sqlite", dir)
		db, err := sql.Open("sqlite", filepath.Join(dir, "trail.db"))
		if err != nil {
			t.Fatal(err)
		}
		var before int
		err = db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&before)
		db.Close()
		if err != nil || before >= sqlite.SchemaVersion() {
			t.Fatalf("the fixture's schema version is %d (%v); this binary's %d: the fixture is not of an earlier version", before, err, sqlite.SchemaVersion())
		}
		testUpgrade(t, map[string]string{"TRAIL_DATA_DIR": dir}, before, sqlite.SchemaVersion())
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("pg_restore"); err != nil {
			t.Fatalf("pg_restore: %v", err)
		}
		base, err := url.Parse(pgtest.ServerURL(t))
		if err != nil {
			t.Fatal(err)
		}
		name := createDatabase(t, base, "trail_upgrade_")
		ctx := context.Background()
		u := &url.URL{Scheme: base.Scheme, User: base.User, Host: base.Host, Path: "/" + name, RawQuery: "sslmode=disable"}
		if out, err := exec.Command("pg_restore", "--no-owner", "--exit-on-error", "--dbname="+u.String(), fixture("postgres-"+previousVersion+".dump")).CombinedOutput(); err != nil {
			t.Fatalf("pg_restore: %v\n%s", err, out)
		}
		conn, err := pgx.Connect(ctx, u.String())
		if err != nil {
			t.Fatal(err)
		}
		var before int
		err = conn.QueryRow(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&before)
		conn.Close(ctx)
		if err != nil || before >= postgres.SchemaVersion() {
			t.Fatalf("the fixture's schema version is %d (%v); this binary's %d: the fixture is not of an earlier version", before, err, postgres.SchemaVersion())
		}
		dir := t.TempDir()
		keys(t, "postgres", dir)
		testUpgrade(t, map[string]string{"TRAIL_DATA_DIR": dir, "TRAIL_DATABASE_URL": u.String()}, before, postgres.SchemaVersion())
	})
}

func testUpgrade(t *testing.T, env map[string]string, from, to int) {
	out, errOut, err := runMain(t, env, "migrate")
	if err != nil {
		t.Fatalf("trail migrate from schema version %d: %v\n%s%s", from, err, out, errOut)
	}
	if out, errOut, err := runMain(t, env, "fsck"); err != nil {
		t.Fatalf("fsck after the upgrade: %v\n%s%s", err, out, errOut)
	}
	var procEnv []string
	for k, v := range env {
		procEnv = append(procEnv, k+"="+v)
	}
	p := startServe(t, append(procEnv, "TRAIL_ADMIN_KEY="+testAdminKey, "TRAIL_RATE_LIMIT=0"))
	t.Cleanup(func() { p.cmd.Process.Kill(); p.wait() })
	if !strings.Contains(p.Stderr(), "schema_version="+strconv.Itoa(to)) {
		t.Errorf("the upgraded server does not report schema version %d:\n%s", to, p.Stderr())
	}
	// organization.created and the 300 events, each with its content.
	ids := readLog(t, p.URL, "org_upgrade")
	if len(ids) != 301 {
		t.Fatalf("%d events after the upgrade, want 301", len(ids))
	}
	code, ev := get(t, p.URL+"/audit_logs/events/"+ids[300]+"?organization_id=org_upgrade", testAdminKey)
	if code != 200 || ev["action"] != "schedule.updated" {
		t.Fatalf("the last event after the upgrade: %d %v", code, ev)
	}
	if code, body := post(t, p.URL+"/audit_logs/events", testAdminKey, map[string]any{"organization_id": "org_upgrade", "event": event(1)}); code != 201 && code != 200 {
		t.Fatalf("a write after the upgrade: %d %v", code, body)
	}
	waitCheckpointText(t, p.URL, "org_upgrade", 302)
}
