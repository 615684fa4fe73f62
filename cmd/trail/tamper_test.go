package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/pgtest"
)

// tamperDB edits a Trail database behind Trail's back.
type tamperDB struct {
	exec  func(q string) error
	query func(q string) (string, error) // the first column of the first row, as text
	pg    bool
}

const tamperOrg = "org_tamper"

// TestFsck_Tamper builds a log of 1,800 events, then edits the
// database directly, one way at a time, and checks that trail fsck finds
// each edit and names the first bad entry, and passes again once the edit
// is undone. On SQLite and on PostgreSQL.
func TestFsck_Tamper(t *testing.T) {
	if testing.Short() {
		t.Skip("loads thousands of events")
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		env := map[string]string{"TRAIL_DATA_DIR": dir}
		loadTamperLog(t, dir, "")
		db, err := sql.Open("sqlite", filepath.Join(dir, "trail.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		td := &tamperDB{
			exec: func(q string) error { _, err := db.Exec(q); return err },
			query: func(q string) (s string, err error) {
				err = db.QueryRow(q).Scan(&s)
				return s, err
			},
		}
		testTamper(t, env, td)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dir, u := t.TempDir(), pgtest.URL(t)
		env := map[string]string{"TRAIL_DATA_DIR": dir, "TRAIL_DATABASE_URL": u}
		loadTamperLog(t, dir, u)
		pool, err := pgxpool.New(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		td := &tamperDB{
			pg:   true,
			exec: func(q string) error { _, err := pool.Exec(context.Background(), q); return err },
			query: func(q string) (s string, err error) {
				err = pool.QueryRow(context.Background(), q).Scan(&s)
				return s, err
			},
		}
		testTamper(t, env, td)
	})
}

// openServer runs trail serve in the test's process on loopback, signing
// checkpoints every 20 ms. The caller closes it.
func openServer(t *testing.T, dir, databaseURL string) *Server {
	t.Helper()
	return openServerWith(t, dir, databaseURL, nil)
}

// openServerWith is openServer with set changing the server before it
// opens.
func openServerWith(t *testing.T, dir, databaseURL string, set func(*Server)) *Server {
	t.Helper()
	s := &Server{stderr: io.Discard, stdout: io.Discard}
	s.dataDir, s.databaseURL, s.Addr, s.LogLevel, s.LogFormat = dir, databaseURL, "127.0.0.1:0", "warn", "text"
	s.AdminKey, s.CheckpointInterval = testAdminKey, 20*time.Millisecond
	if set != nil {
		set(s)
	}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// loadTamperLog runs trail serve, ingests 1,800 events into tamperOrg and
// waits until a checkpoint signs them all.
func loadTamperLog(t *testing.T, dir, databaseURL string) {
	t.Helper()
	s := openServer(t, dir, databaseURL)
	defer s.Close()
	u := s.HTTP.URL()
	if code, body := post(t, u+"/organizations", testAdminKey, map[string]any{"id": tamperOrg, "name": "Tamper"}); code != 201 {
		t.Fatalf("create organization: %d %v", code, body)
	}
	for b := 0; b < 6; b++ {
		var evs []any
		for i := 0; i < 300; i++ {
			evs = append(evs, event(b*300+i))
		}
		if code, body := post(t, u+"/audit_logs/events/batch", testAdminKey, map[string]any{"organization_id": tamperOrg, "events": evs}); code != 200 {
			t.Fatalf("batch: %d %v", code, body)
		}
	}
	waitCheckpointText(t, u, tamperOrg, 1801)
}

func testTamper(t *testing.T, env map[string]string, td *tamperDB) {
	fsck := func() (string, error) {
		out, _, err := runMain(t, env, "fsck", "--org", tamperOrg)
		return out, err
	}
	if out, err := fsck(); err != nil || !strings.Contains(out, "ok   "+tamperOrg+": 1801 events") {
		t.Fatalf("fsck of an untouched log: %v\n%s", err, out)
	}
	// Each case is undone by restoring the organization's rows.
	tables := []string{"events", "organizations", "checkpoints", "merkle_tiles", "purged_events", "event_targets", "event_counts", "org_actions"}
	keyCol := map[string]string{"events": "organization_id", "organizations": "id", "checkpoints": "organization_id", "merkle_tiles": "organization_id",
		"purged_events": "organization_id", "event_targets": "organization_id", "event_counts": "organization_id", "org_actions": "organization_id"}
	for _, tb := range tables {
		if err := td.exec(fmt.Sprintf(`CREATE TABLE pristine_%s AS SELECT * FROM %s WHERE %s = '%s'`, tb, tb, keyCol[tb], tamperOrg)); err != nil {
			t.Fatal(err)
		}
	}
	restore := func() {
		for _, tb := range tables {
			if err := td.exec(fmt.Sprintf(`DELETE FROM %s WHERE %s IN ('%s', 'org_elsewhere')`, tb, keyCol[tb], tamperOrg)); err != nil {
				t.Fatal(err)
			}
			if err := td.exec(fmt.Sprintf(`INSERT INTO %s SELECT * FROM pristine_%s`, tb, tb)); err != nil {
				t.Fatal(err)
			}
		}
	}
	where := fmt.Sprintf(`organization_id = '%s' AND idx = 1500`, tamperOrg)
	org := fmt.Sprintf(`organization_id = '%s'`, tamperOrg)
	cases := tamperCases(td, where, org)
	for _, c := range cases {
		for _, q := range c.edits {
			if err := td.exec(q); err != nil {
				t.Fatalf("%s: %s: %v", c.name, q, err)
			}
		}
		out, err := fsck()
		if err == nil || !strings.Contains(out, "FAIL "+tamperOrg+": ") || !strings.Contains(out, c.want) {
			t.Errorf("%s: fsck did not name %q: %v\n%s", c.name, c.want, err, out)
		}
		restore()
		if !td.pg && strings.HasPrefix(c.name, "full-text") {
			restoreSearch(t, td, where)
		}
		if out, err := fsck(); err != nil {
			t.Fatalf("after undoing %s: %v\n%s", c.name, err, out)
		}
	}
	if !td.pg {
		// A number stored as an older Trail stored it (1499.0, not 1499):
		// the leaf hash holds (RFC 8785 writes both as 1499), fsck warns.
		if err := td.exec(`UPDATE events SET data = replace(data, '"n":1499}', '"n":1499.0}') WHERE ` + where); err != nil {
			t.Fatal(err)
		}
		restoreSearch(t, td, where)
		out, _, err := runMain(t, env, "fsck", "--org", tamperOrg)
		if err != nil || !strings.Contains(out, "warn "+tamperOrg+": event index 1500 (id ") || !strings.Contains(out, "the number 1499.0 at /metadata/n") {
			t.Errorf("fsck of a number not in canonical form: %v\n%s", err, out)
		}
		restore()
		restoreSearch(t, td, where)
	}

	// An editor who recomputes the leaf hash of the row it changes: the
	// row agrees with itself, not with the tree.
	ev := storedEvent(t, td, where)
	ev.Context.Location = "198.51.100.1"
	forged, _ := json.Marshal(ev)
	h := ev.LeafHash()
	hexHash := fmt.Sprintf("%x", h[:])
	lit := `X'` + hexHash + `'`
	if td.pg {
		lit = `decode('` + hexHash + `', 'hex')`
	}
	if err := td.exec(`UPDATE events SET data = '` + strings.ReplaceAll(string(forged), "'", "''") + `', leaf_hash = ` + lit + ` WHERE ` + where); err != nil {
		t.Fatal(err)
	}
	// (On PostgreSQL the row's search vector, derived from the old
	// document, gives it away first.)
	if out, err := fsck(); err == nil || !strings.Contains(out, "event index 1500 ") {
		t.Errorf("a row changed with its leaf hash: %v\n%s", err, out)
	}
	restore()
}

// tamperCase is an edit of the database behind Trail's back, and what
// fsck's output must then say.
type tamperCase struct {
	name  string
	edits []string
	want  string // in fsck's output
}

// tamperCases are the edits testTamper makes, one at a time: where selects
// the event of index 1500, org the organization's rows.
func tamperCases(td *tamperDB, where, org string) []tamperCase {
	randomHash := `randomblob(32)`
	if td.pg {
		randomHash = `decode(md5('a') || md5('b'), 'hex')`
	}
	cases := []tamperCase{
		{"document", []string{`UPDATE events SET data = replace(data, '"location":"127.0.0.1"', '"location":"127.0.0.2"') WHERE ` + where}, "event index 1500 "},
		{"leaf_hash", []string{`UPDATE events SET leaf_hash = ` + randomHash + ` WHERE ` + where}, "event index 1500 "},
		{"id", []string{`UPDATE events SET id = 'X' || substr(id, 2) WHERE ` + where}, "event index 1500 "},
		{"action", []string{`UPDATE events SET action = action || 'x' WHERE ` + where}, "event index 1500 "},
		{"actor_id", []string{`UPDATE events SET actor_id = actor_id || 'x' WHERE ` + where}, "event index 1500 "},
		{"actor_type", []string{`UPDATE events SET actor_type = 'api_key' WHERE ` + where}, "event index 1500 "},
		{"actor_name", []string{`UPDATE events SET actor_name = actor_name || 'x' WHERE ` + where}, "event index 1500 "},
		{"occurred_at", []string{`UPDATE events SET occurred_at = occurred_at + 1 WHERE ` + where}, "event index 1500 "},
		{"organization_id", []string{`UPDATE events SET organization_id = 'org_elsewhere' WHERE ` + where}, "event index 1500: missing"},
		{"idx", []string{`UPDATE events SET idx = 1000000 WHERE ` + where}, "event index 1500: missing"},
		{"deleted row", []string{`DELETE FROM events WHERE ` + where}, "event index 1500: missing"},
		{"swapped rows", []string{
			`UPDATE events SET idx = -1 WHERE ` + where,
			`UPDATE events SET idx = 1500 WHERE ` + org + ` AND idx = 1501`,
			`UPDATE events SET idx = 1501 WHERE ` + org + ` AND idx = -1`,
		}, "event index 1500 "},
		{"row inserted in the middle", []string{
			`UPDATE events SET idx = idx + 1000000 WHERE ` + org + ` AND idx >= 1500`,
			`UPDATE events SET idx = idx - 999999 WHERE ` + org + ` AND idx >= 1000000`,
			insertCopy(td.pg, 1499, 1500),
			`UPDATE organizations SET next_index = next_index + 1 WHERE id = '` + tamperOrg + `'`,
		}, "event index 1500 "},
		{"row appended behind Trail's back", []string{insertCopy(td.pg, 1499, 1801)}, "event index 1801 "},
		// Issue 16: a fresh event "purged" by hand, as retention would: its
		// id and index kept, its row gone. No purge record covers it.
		{"fake purge", []string{
			`INSERT INTO purged_events (organization_id, idx, id, occurred_at) SELECT organization_id, idx, id, occurred_at FROM events WHERE ` + where,
			`DELETE FROM events WHERE ` + where,
		}, "event index 1500: purged without evidence"},
		{"fake purge record", []string{
			`INSERT INTO purged_events (organization_id, idx, id, occurred_at) SELECT organization_id, idx, id, occurred_at FROM events WHERE ` + where,
			`DELETE FROM events WHERE ` + where,
			`UPDATE events SET action = 'audit_log_events.purged' WHERE ` + org + ` AND idx = 1700`,
		}, "event index 1700 "},
		{"tree tile", []string{`UPDATE merkle_tiles SET hashes = ` + randomHash + ` || substr(hashes, 33) WHERE ` + org + ` AND level = 0 AND idx = 5`}, "event index 1280 "},
		{"upper tree tile", []string{`UPDATE merkle_tiles SET hashes = ` + randomHash + ` || substr(hashes, 33) WHERE ` + org + ` AND level = 1 AND idx = 0`}, "tile 1/0"},
		{"checkpoint root", []string{`UPDATE checkpoints SET root = ` + randomHash + ` WHERE ` + org + ` AND tree_size = 1801`}, "checkpoint of tree size 1801"},
		{"latest checkpoint deleted", []string{`DELETE FROM checkpoints WHERE ` + org + ` AND tree_size = 1801`}, "no checkpoint of that size"},
		{"checkpoint signature", []string{`UPDATE checkpoints SET note = replace(note, '` + "\n1801\n" + `', '` + "\n1800\n" + `') WHERE ` + org + ` AND tree_size = 1801`}, "checkpoint of tree size 1801"},
	}
	// Issue 16: the secondary indexes that read paths rely on.
	targetOf1500 := `seq = (SELECT seq FROM events WHERE ` + where + `)`
	if td.pg {
		targetOf1500 = `idx = 1500`
	}
	cases = append(cases, []tamperCase{
		{"target row deleted", []string{`DELETE FROM event_targets WHERE ` + org + ` AND ` + targetOf1500}, "event index 1500 (id "},
		{"target row retargeted", []string{`UPDATE event_targets SET target_id = 'sched_1' WHERE ` + org + ` AND ` + targetOf1500}, "event index 1500 (id "},
		{"hourly counts", []string{`UPDATE event_counts SET n = n - 1 WHERE ` + org}, "hourly counts: "},
		{"hourly count of another action", []string{`UPDATE event_counts SET action = 'schedule.deleted' WHERE ` + org + ` AND action = 'schedule.updated'`}, "hourly counts: "},
		{"actions catalogue", []string{`DELETE FROM org_actions WHERE ` + org + ` AND action = 'schedule.updated'`}, `the action "schedule.updated" is not in the actions catalogue`},
	}...)
	if td.pg {
		cases = append(cases, []tamperCase{
			{"received_at", []string{`UPDATE events SET received_at = received_at + interval '1 microsecond' WHERE ` + where}, "event index 1500 "},
			{"occurred_day", []string{`UPDATE events SET occurred_day = occurred_day + 1 WHERE ` + where}, "event index 1500 "},
			{"target_ids", []string{`UPDATE events SET target_ids = array['forged'] WHERE ` + where}, "event index 1500 "},
			{"target_types", []string{`UPDATE events SET target_types = array_append(target_types, 'x') WHERE ` + where}, "event index 1500 "},
			{"search", []string{`UPDATE events SET search = to_tsvector('simple', 'forged words') WHERE ` + where}, "event index 1500 "},
		}...)
	} else {
		cases = append(cases, tamperCase{"seq", []string{`UPDATE events SET seq = seq + 100000000 WHERE ` + where}, "event index 1501 "})
		cases = append(cases, tamperCase{"full-text row deleted", []string{`DELETE FROM events_fts WHERE rowid = (SELECT seq FROM events WHERE ` + where + `)`}, "event index 1500 (id "})
	}
	return cases
}

// restoreSearch writes the full-text entry of the event where selects as
// Trail wrote it: the words of its document.
func restoreSearch(t *testing.T, td *tamperDB, where string) {
	t.Helper()
	ev := storedEvent(t, td, where)
	if err := td.exec(`DELETE FROM events_fts WHERE rowid = (SELECT seq FROM events WHERE ` + where + `)`); err != nil {
		t.Fatal(err)
	}
	if err := td.exec(`INSERT INTO events_fts (rowid, body) SELECT seq, '` + strings.ReplaceAll(trail.SearchText(ev), "'", "''") + `' FROM events WHERE ` + where); err != nil {
		t.Fatal(err)
	}
}

// storedEvent reads the document of the event where selects.
func storedEvent(t *testing.T, td *tamperDB, where string) *trail.Event {
	t.Helper()
	data, err := td.query(`SELECT data FROM events WHERE ` + where)
	if err != nil {
		t.Fatal(err)
	}
	var ev trail.Event
	d := json.NewDecoder(strings.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&ev); err != nil {
		t.Fatal(err)
	}
	return &ev
}

// insertCopy copies event from (its columns as they are) to index to.
func insertCopy(pg bool, from, to int) string {
	cols := "organization_id, idx, id, action, actor_id, actor_type, actor_name, occurred_at, data, leaf_hash"
	src := fmt.Sprintf("organization_id, %d, id || 'copy', action, actor_id, actor_type, actor_name, occurred_at, data, leaf_hash", to)
	if pg {
		cols += ", received_at, occurred_day, target_ids, target_types, search"
		src += ", received_at, occurred_day, target_ids, target_types, search"
	} else {
		cols += ", seq"
		src += ", (SELECT MAX(seq) + 1 FROM events)"
	}
	return fmt.Sprintf(`INSERT INTO events (%s) SELECT %s FROM events WHERE organization_id = '%s' AND idx = %d`, cols, src, tamperOrg, from)
}
