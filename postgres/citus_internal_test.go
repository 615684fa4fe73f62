package postgres

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
