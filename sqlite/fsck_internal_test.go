package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/store"
	"github.com/trail-audit/trail/tlog"
)

// TestCountTokens: the shortcut counts as FTS5 does for the texts Trail
// indexes, checked against FTS5 itself (a scratch table).
func TestCountTokens(t *testing.T) {
	db, err := sql.Open("sqlite", "file:tokens?mode=memory")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`CREATE VIRTUAL TABLE events_fts USING fts5 (body, content = '', contentless_delete = 1)`); err != nil {
		t.Fatal(err)
	}
	c, err := newSearchCheck(context.Background(), tx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	for _, text := range []string{
		"user.signed_in u_1 user Ann Lee 192.168.0.1 Mozilla/5.0 (X11; Linux x86_64)",
		"schedule.updated sched_12 schedule 42 true 1.5e-7 -3",
		"café naïve e\u0301 日本語 テスト ÄÖÜ ß İ 🎉 𝄞 ",
		"a-b_c:d/e\\f\"g'h (i) [j] {k} <l> @m #n $o %p ^q &r *s +t =u |v ~w `x",
		"",
		"   ",
		"\u00a0nbsp\u2028ls\u200bzw",
	} {
		want, err := c.tokens(context.Background(), text)
		if err != nil {
			t.Fatal(err)
		}
		if got := countTokens(text); got != want {
			t.Errorf("%q: %d tokens, FTS5 makes %d", text, got, want)
		}
	}
}

// TestFsck_ThoroughSearch: a full-text entry replaced by another with as
// many words passes the quick check (it compares counts) and fails
// fsck --thorough (it matches each word), naming the event.
func TestFsck_ThoroughSearch(t *testing.T) {
	ctx := context.Background()
	db := NewDB(filepath.Join(t.TempDir(), "trail.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := service.New(NewStore(db), NewExportService(db)).Organizations.CreateOrganization(ctx, &trail.Organization{ID: "org_fts", Name: "fts"}); err != nil {
		t.Fatal(err)
	}
	var ins []*trail.EventInput
	for i := 0; i < 20; i++ {
		ins = append(ins, &trail.EventInput{Action: "schedule.updated", OccurredAt: time.Now().UTC(), Actor: trail.Actor{ID: "u", Type: "user"},
			Targets: []trail.Target{{ID: fmt.Sprint("sched_", i), Type: "schedule"}}, Context: trail.EventContext{Location: "x"}})
	}
	if _, err := NewEventService(db).AppendEvents(ctx, "org_fts", ins); err != nil {
		t.Fatal(err)
	}
	skey, _, _ := note.GenerateKey(rand.Reader, "trail.test")
	keys, err := tlog.ParseKeys(skey)
	if err != nil {
		t.Fatal(err)
	}
	logs := NewLogStore(db)
	if _, err := (&tlog.Integrator{Store: logs, Signer: keys.Signer, Timestamper: keys.Timestamper, Origin: "trail.test"}).Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	var seq int64
	var data string
	if err := db.writer.QueryRow(`SELECT seq, data FROM events WHERE organization_id = 'org_fts' AND idx = 7`).Scan(&seq, &data); err != nil {
		t.Fatal(err)
	}
	doc, err := store.DecodeEvent(data)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(trail.SearchText(doc), "schedule.updated", "schedule.deleted", 1)
	if _, err := db.writer.Exec(`DELETE FROM events_fts WHERE rowid = ?`, seq); err != nil {
		t.Fatal(err)
	}
	if _, err := db.writer.Exec(`INSERT INTO events_fts (rowid, body) VALUES (?, ?)`, seq, text); err != nil {
		t.Fatal(err)
	}
	opts := tlog.FsckOptions{Key: keys.VerifierKey, Origin: "trail.test"}
	if _, err := opts.Fsck(ctx, logs, "org_fts"); err != nil {
		t.Fatalf("the quick check compares counts, which agree: %v", err)
	}
	opts.Thorough = true
	if _, err := opts.Fsck(ctx, logs, "org_fts"); err == nil || !strings.Contains(err.Error(), "event index 7 (id ") || !strings.Contains(err.Error(), "full-text entries: 1 missing") {
		t.Fatalf("fsck --thorough of a replaced entry: %v", err)
	}
}
