package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/internal/testwait"
)

// TestMultiNode starts two trail serve processes on one PostgreSQL
// database and ingests through both at once into the same organizations.
// Every acknowledged event must be stored once, every organization's index
// must be gapless and unique, an Idempotency-Key sent to both nodes must
// give one event, and both nodes must see the same logs.
func TestMultiNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	testMultiNode(t, pgtest.URL(t), 3)
}

// TestMultiNode_Citus is TestMultiNode on a Citus cluster
// (TRAIL_TEST_CITUS_URL), with twelve organizations spread over its
// shards and workers.
func TestMultiNode_Citus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	testMultiNode(t, pgtest.CitusURL(t), 12)
}

func testMultiNode(t *testing.T, dbURL string, orgs int) {
	m := startMultiNode(t, dbURL, orgs)
	acked := m.ingest(t)
	if acked == nil { // a request failed
		return
	}
	m.checkLogs(t, acked)
	m.checkCheckpoints(t)
	m.checkExports(t)
	// A node with another signing key refuses to start, naming it.
	_, err := tryServe(t, append(m.env[:len(m.env):len(m.env)], "TRAIL_DATA_DIR="+t.TempDir(), "TRAIL_SIGNING_KEY_FILE="+filepath.Join(t.TempDir(), "other.key")))
	if err == nil || !strings.Contains(err.Error(), "signing key") {
		t.Fatalf("a node with another signing key: %v", err)
	}
}

// multiNode is two nodes of one PostgreSQL database, with its
// organizations.
type multiNode struct {
	dbURL, keyFile string
	env            []string
	a, b           *process
	nodes          []*process
	orgs           []string
}

// multiAck is where an event was acknowledged.
type multiAck struct {
	org   string
	index int64
}

func startMultiNode(t *testing.T, dbURL string, n int) *multiNode {
	keyFile := filepath.Join(t.TempDir(), "log-signing.key")
	// Every node of a database is given the same signing key; the first
	// to start creates the file.
	env := []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_RATE_LIMIT=0", "TRAIL_DATABASE_URL=" + dbURL,
		"TRAIL_SIGNING_KEY_FILE=" + keyFile, "TRAIL_SECRET_KEY_FILE=" + filepath.Join(filepath.Dir(keyFile), "secret.key"), "TRAIL_CHECKPOINT_INTERVAL=50ms"}
	// Both nodes start together: migrations and partitions are created
	// once, under advisory locks.
	var a, b *process
	var errA, errB error
	dirA, dirB := t.TempDir(), t.TempDir()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a, errA = tryServe(t, append(env, "TRAIL_DATA_DIR="+dirA)) }()
	go func() { defer wg.Done(); b, errB = tryServe(t, append(env, "TRAIL_DATA_DIR="+dirB)) }()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("a node did not start: %v %v", errA, errB)
	}
	nodes := []*process{a, b}
	// Both bootstrapped TRAIL_ADMIN_KEY at once: one key holds it.
	if code, body := get(t, a.URL+"/api_keys?limit=100", testAdminKey); code != 200 || len(body["data"].([]any)) != 1 {
		t.Fatalf("keys after two nodes bootstrapped the same admin key: %d %v", code, body)
	}
	var orgs []string
	for i := range n {
		orgs = append(orgs, fmt.Sprintf("org_multi_%c", 'a'+i))
	}
	for i, o := range orgs {
		if code, body := post(t, nodes[i%2].URL+"/organizations", testAdminKey, map[string]any{"id": o, "name": o}); code != 201 {
			t.Fatalf("create %s: %d %v", o, code, body)
		}
	}
	return &multiNode{dbURL: dbURL, keyFile: keyFile, env: env, a: a, b: b, nodes: nodes, orgs: orgs}
}

// ingest sends events to both nodes at once and returns where each was
// acknowledged.
func (m *multiNode) ingest(t *testing.T) map[string]multiAck {
	nodes, orgs := m.nodes, m.orgs
	var mu sync.Mutex
	var wg sync.WaitGroup
	acked := map[string]multiAck{}
	record := func(org string, d map[string]any) {
		mu.Lock()
		defer mu.Unlock()
		id, idx := d["id"].(string), int64(d["index"].(float64))
		if prev, ok := acked[id]; ok && prev != (multiAck{org, idx}) {
			t.Errorf("event %s acknowledged as %v and as %v", id, prev, multiAck{org, idx})
		}
		acked[id] = multiAck{org, idx}
	}
	// Plain ingestion: 8 clients per node, single events and batches.
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			node := nodes[w%2]
			for i := 0; i < 60; i++ {
				org := orgs[(w+i)%len(orgs)]
				if i%5 == 0 {
					evs := []any{event(w*1000 + i), event(w*1000 + i + 500)}
					code, body := post(t, node.URL+"/audit_logs/events/batch", testAdminKey, map[string]any{"organization_id": org, "events": evs})
					if code != 200 {
						t.Errorf("batch: %d %v", code, body)
						return
					}
					for _, d := range body["data"].([]any) {
						record(org, d.(map[string]any))
					}
					continue
				}
				code, body := post(t, node.URL+"/audit_logs/events", testAdminKey, map[string]any{"organization_id": org, "event": event(w*1000 + i)})
				if code != 200 {
					t.Errorf("event: %d %v", code, body)
					return
				}
				record(org, body)
			}
		}(w)
	}
	// The same event sent to both nodes at once, with an Idempotency-Key
	// or without one (identical events within 24 hours are one): one event.
	type pair struct{ a, b string }
	both := func(k int, p *pair, hdr ...string) {
		org := orgs[k%len(orgs)]
		ev := event(900000 + k)
		for n, node := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body := post(t, node.URL+"/audit_logs/events", testAdminKey, map[string]any{"organization_id": org, "event": ev}, hdr...)
				if code != 200 {
					t.Errorf("event sent to both nodes: %d %v", code, body)
					return
				}
				record(org, body)
				mu.Lock()
				defer mu.Unlock()
				if n == 0 {
					p.a = body["id"].(string)
				} else {
					p.b = body["id"].(string)
				}
			}()
		}
	}
	keyed, same := make([]pair, 100), make([]pair, 50)
	for k := range keyed {
		both(k, &keyed[k], "Idempotency-Key", fmt.Sprintf("retry-%d", k))
	}
	for k := range same {
		both(len(keyed)+k, &same[k])
	}
	wg.Wait()
	if t.Failed() {
		return nil
	}
	for k, p := range keyed {
		if p.a != p.b {
			t.Errorf("Idempotency-Key retry-%d gave two events: %s on one node, %s on the other", k, p.a, p.b)
		}
	}
	for k, p := range same {
		if p.a != p.b {
			t.Errorf("identical event %d stored twice: %s on one node, %s on the other", k, p.a, p.b)
		}
	}
	return acked
}

func (m *multiNode) checkLogs(t *testing.T, acked map[string]multiAck) {
	a, b, orgs := m.a, m.b, m.orgs
	// Each node reads every log whole: gapless (readLog checks), the same
	// on both, and holding every acknowledged event at its index.
	stored := map[string]multiAck{}
	for _, org := range orgs {
		logA, logB := readLog(t, a.URL, org), readLog(t, b.URL, org)
		if fmt.Sprint(logA) != fmt.Sprint(logB) {
			t.Fatalf("%s: the nodes disagree: %d events on one, %d on the other", org, len(logA), len(logB))
		}
		for i, id := range logA {
			if _, dup := stored[id]; dup {
				t.Fatalf("event %s stored twice", id)
			}
			stored[id] = multiAck{org, int64(i)}
		}
	}
	for id, want := range acked {
		if got, ok := stored[id]; !ok || got != want {
			t.Fatalf("acknowledged event %s (%v) not stored as acknowledged (found %v)", id, want, got)
		}
	}
	// Besides the acknowledged events, each log holds only its
	// organization.created event.
	if len(stored) != len(acked)+len(orgs) {
		t.Fatalf("%d events stored, %d acknowledged + %d organization.created", len(stored), len(acked), len(orgs))
	}
	t.Logf("%d events acknowledged through two nodes, all stored once, gapless", len(acked))
}

func (m *multiNode) checkCheckpoints(t *testing.T) {
	a, nodes, orgs := m.a, m.nodes, m.orgs
	// Both nodes' integrators signed checkpoints of the same trees: each
	// node serves one that covers the whole log, and trail fsck finds
	// every checkpoint consistent with the events.
	for _, org := range orgs {
		size := len(readLog(t, a.URL, org))
		testwait.ForNil(t, 30*time.Second, org+"'s checkpoint on both nodes", func() error {
			notes := [2]string{}
			for i, n := range nodes {
				notes[i] = getText(t, n.URL+"/audit_logs/checkpoint?organization_id="+org, testAdminKey)
			}
			if notes[0] == notes[1] && strings.Contains(notes[0], fmt.Sprintf("\n%d\n", size)) {
				return nil
			}
			return fmt.Errorf("%s: no checkpoint of %d events on both nodes: %q", org, size, notes)
		})
	}
	out, _, err := runMain(t, map[string]string{"TRAIL_DATABASE_URL": m.dbURL, "TRAIL_SIGNING_KEY_FILE": m.keyFile}, "fsck")
	if err != nil || strings.Count(out, "ok   ") != len(orgs)+1 {
		t.Fatalf("fsck after two nodes: %v\n%s", err, out)
	}
}

func (m *multiNode) checkExports(t *testing.T) {
	a, b, nodes, orgs := m.a, m.b, m.nodes, m.orgs
	// Exports created through both nodes are each claimed and written by
	// exactly one node (one attempt, one "export ready" line in one node's
	// log), and either node serves every file, from the database.
	var exportIDs []string
	for i := range 12 {
		code, body := post(t, nodes[i%2].URL+"/audit_logs/exports", testAdminKey, map[string]any{"organization_id": orgs[i%3],
			"range_start": "2020-01-01T00:00:00Z", "range_end": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		if code != 201 {
			t.Fatalf("create export: %d %v", code, body)
		}
		exportIDs = append(exportIDs, body["id"].(string))
	}
	db, err := (&storageFlags{databaseURL: m.dbURL}).openDB(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, id := range exportIDs {
		var body map[string]any
		testwait.Poll(60*time.Second, func() error {
			if _, body = get(t, nodes[i%2].URL+"/audit_logs/exports/"+id, testAdminKey); body["state"] == "pending" {
				return errors.New("pending")
			}
			return nil
		})
		if body["state"] != "ready" {
			t.Fatalf("export %s: %v", id, body)
		}
		// The link from one node, downloaded from the other.
		link := strings.Replace(body["url"].(string), nodes[i%2].URL, nodes[1-i%2].URL, 1)
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || fmt.Sprint(n) != fmt.Sprint(body["bytes"]) {
			t.Fatalf("export %s from the other node: %d, %d bytes of %v", id, resp.StatusCode, n, body["bytes"])
		}
		ex, err := db.Exports.FindExportByID(context.Background(), "", id)
		if err != nil || ex.Attempts != 1 {
			t.Fatalf("export %s: %+v %v", id, ex, err)
		}
		if writers := strings.Count(a.Stderr(), "export ready\" export="+id) + strings.Count(b.Stderr(), "export ready\" export="+id); writers != 1 {
			t.Fatalf("export %s was written %d times", id, writers)
		}
	}
}

// getText GETs a text body.
func getText(t *testing.T, url, key string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
