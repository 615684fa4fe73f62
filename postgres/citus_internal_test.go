package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/store"
	"github.com/trail-audit/trail/storetest"
)

// TestRowLocksNameTheirOrganization reads the driver's SQL: every row
// lock (FOR UPDATE, FOR SHARE, x.forUpdate) is in a statement that names
// the organization (organization_id = $n, or the organizations table's
// id), or is on a reference table of Citus (layout). Citus refuses a row
// lock on several shards; a lock that names its organization is routed
// to one.
func TestRowLocksNameTheirOrganization(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	lock := regexp.MustCompile(`FOR (UPDATE|SHARE|NO KEY UPDATE|KEY SHARE)|forUpdate\(`)
	from := regexp.MustCompile(`(?i)\bFROM\s+([a-z_]+)`)
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		for i, line := range lines {
			if !lock.MatchString(line) || strings.Contains(line, "func (x *executor) forUpdate") || strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			if strings.Contains(line, `return " FOR UPDATE"`) {
				continue // the helper itself
			}
			n++
			if i > 0 && !from.MatchString(line) {
				line = lines[i-1] + line // a statement over two lines
			}
			m := from.FindStringSubmatch(line)
			switch {
			case m == nil:
				t.Errorf("%s:%d: a row lock whose table is not on its line: %s", f, i+1, strings.TrimSpace(line))
			case layout[m[1]] == "" && m[1] != "organizations":
				if _, ok := layout[m[1]]; !ok {
					t.Errorf("%s:%d: a row lock on %s, which has no layout", f, i+1, m[1])
				}
			case strings.Contains(line, "organization_id = $"), m[1] == "organizations" && strings.Contains(line, "WHERE id = "):
			default:
				t.Errorf("%s:%d: a row lock on %s that does not name its organization: %s", f, i+1, m[1], strings.TrimSpace(line))
			}
		}
	}
	if n < 4 {
		t.Fatalf("only %d row locks found: the test no longer reads the driver's SQL", n)
	}
}

// TestEveryTableHasALayout: every table the migrations create has its
// layout on Citus, so that a migration on Citus distributes it.
func TestEveryTableHasALayout(t *testing.T) {
	t.Parallel()
	now := time.Now()
	db := openAt(t, &now)
	rows, err := db.pool.Query(context.Background(), `SELECT c.relname FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var table string
		if err := rows.Scan(&table); err != nil {
			t.Fatal(err)
		}
		n++
		if _, ok := layout[table]; !ok {
			t.Errorf("table %s has no layout on Citus (postgres.layout)", table)
		}
	}
	if n != len(layout) {
		t.Errorf("%d tables, %d layouts", n, len(layout))
	}
}

// TestStatements: migrations split into their statements, a $$ block
// whole, comments kept with the statement that follows them.
func TestStatements(t *testing.T) {
	got := statements("-- a; comment\nCREATE TABLE a (x int); -- b;\nDO $$\nBEGIN\n\tEXECUTE 'x';\nEND\n$$;\nDROP INDEX i;\n")
	want := []string{"-- a; comment\nCREATE TABLE a (x int); -- b;\n", "DO $$\nBEGIN\n\tEXECUTE 'x';\nEND\n$$;\n", "DROP INDEX i;\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("statements = %q, want %q", got, want)
	}
	n := 0
	entries, _ := migrationFS.ReadDir("migrations")
	for _, e := range entries {
		b, _ := migrationFS.ReadFile("migrations/" + e.Name())
		n += len(statements(string(b)))
	}
	if n < 40 {
		t.Fatalf("the migrations split into %d statements", n)
	}
}

// TestAppendCommitsInOnePhase_Citus: on Citus, a small commit of one
// organization's events is routed to its worker and commits there in one
// phase; a commit of DB.citusCopyAt events or more writes with COPY, which
// Citus makes a two-phase commit. The appends run on a connection of
// their own on which Citus reports every command it sends to a worker
// (citus.log_remote_commands), and the test counts the PREPARE
// TRANSACTIONs among them. The second commit is also the control: it
// shows that the probe sees a two-phase commit.
func TestAppendCommitsInOnePhase_Citus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := time.Now().UTC()
	url := pgtest.CitusURL(t)
	db := openURL(t, url, &now)
	if !db.citus {
		t.Fatal("the database is not detected as Citus")
	}
	orgs := service.New(NewStore(db), NewExportService(db)).Organizations
	if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: "org_phase", Name: "phase"}); err != nil {
		t.Fatal(err)
	}
	poolCfg, err := pgxpool.ParseConfig(url) // the URL names pool settings
	if err != nil {
		t.Fatal(err)
	}
	cfg := poolCfg.ConnConfig
	var mu sync.Mutex
	prepares := 0
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.Contains(n.Message, "PREPARE TRANSACTION") {
			mu.Lock()
			prepares++
			mu.Unlock()
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `SET citus.log_remote_commands = on`); err != nil {
		t.Fatal(err)
	}
	// write appends n events in a transaction on conn, as Trail does, and
	// returns how many PREPARE TRANSACTIONs Citus sent for it.
	seq := 0
	write := func(n int) int {
		mu.Lock()
		before := prepares
		mu.Unlock()
		if err := commitEvents(ctx, db, conn, "org_phase", newEvents(&seq, n)); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return prepares - before
	}
	if n := write(db.citusCopyAt - 1); n != 0 {
		t.Errorf("an append of %d events of one organization made %d two-phase commits, want 0", db.citusCopyAt-1, n)
	}
	if n := write(db.citusCopyAt); n < 1 {
		t.Errorf("an append of %d events (with COPY) made %d two-phase commits: the probe does not see them", db.citusCopyAt, n)
	}
	var stored int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE organization_id = 'org_phase'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := (db.citusCopyAt - 1) + db.citusCopyAt + 1; stored != want { // with organization.created
		t.Errorf("%d events stored, want %d", stored, want)
	}
}

// BenchmarkAppendRows_Citus: a commit of n events of one organization
// on Citus, its rows written as VALUES (one phase) or with COPY (two
// phases), to find where COPY pays (DB.citusCopyAt).
func BenchmarkAppendRows_Citus(b *testing.B) {
	ctx := context.Background()
	now := time.Now().UTC()
	db := NewDB(pgtest.CitusURL(b))
	db.Now = func() time.Time { return now }
	if err := db.Open(ctx); err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	orgs := service.New(NewStore(db), NewExportService(db)).Organizations
	if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: "org_rows", Name: "rows"}); err != nil {
		b.Fatal(err)
	}
	seq := 0
	for _, n := range []int{1, 4, 16, 64, 256} {
		for _, mode := range []string{"values", "copy"} {
			b.Run(fmt.Sprintf("events=%d/%s", n, mode), func(b *testing.B) {
				db.citusCopyAt = 1 << 30
				if mode == "copy" {
					db.citusCopyAt = 0
				}
				for b.Loop() {
					if err := commitEvents(ctx, db, db.pool, "org_rows", newEvents(&seq, n)); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// newEvents returns n test events, numbered from *seq on.
func newEvents(seq *int, n int) []*trail.EventInput {
	in := make([]*trail.EventInput, n)
	for i := range in {
		in[i] = storetest.NewEvent(*seq)
		*seq++
	}
	return in
}

// commitEvents appends in to org in a transaction of its own on c, as a
// committer does for a group of one request.
func commitEvents(ctx context.Context, db *DB, c interface {
	Begin(context.Context) (pgx.Tx, error)
}, org string, in []*trail.EventInput) error {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	a := db.newAppender(tx)
	if err := a.lockHeads(ctx, []string{org}); err != nil {
		return err
	}
	if _, err := a.add(store.NewAppendRequest(org, in, searchForm)); err != nil {
		return err
	}
	if err := a.flush(ctx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
