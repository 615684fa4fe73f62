package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/internal/testwait"
)

// TestRetention: events older than a shortened retention are purged by
// trail purge; they read as {"id","index","purged":true} with their leaf
// hash and a proof that still verifies, and trail verify and trail fsck
// still pass over the whole log. On SQLite and on PostgreSQL.
func TestRetention(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); testRetention(t, "") })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testRetention(t, pgtest.URL(t)) })
}

func testRetention(t *testing.T, databaseURL string) {
	dir := t.TempDir()
	env := map[string]string{"TRAIL_DATA_DIR": dir, "TRAIL_DATABASE_URL": databaseURL}
	// The first checkpoints are signed, and timestamped, two days ago: a
	// purge under a retention of one day may rely on them. The later
	// ones (the purge's record's) now.
	var backdated atomic.Bool
	backdated.Store(true)
	s := openServerWith(t, dir, databaseURL, func(s *Server) {
		s.CheckpointClock = func() time.Time {
			if backdated.Load() {
				return time.Now().Add(-48 * time.Hour)
			}
			return time.Now()
		}
	})
	defer s.Close()
	u := s.HTTP.URL()
	const org = "org_retention"
	if code, body := post(t, u+"/organizations", testAdminKey, map[string]any{"id": org, "name": "Retention"}); code != 201 {
		t.Fatalf("%d %v", code, body)
	}
	var ids []string
	for i := 0; i < 40; i++ {
		ev := event(i)
		if i < 30 {
			ev["occurred_at"] = time.Now().Add(-72 * time.Hour).UTC().Format(time.RFC3339Nano)
		}
		code, body := post(t, u+"/audit_logs/events", testAdminKey, map[string]any{"organization_id": org, "event": ev})
		if code != 200 {
			t.Fatalf("%d %v", code, body)
		}
		ids = append(ids, body["id"].(string))
	}
	put := func(days int) (int, string) {
		b, _ := json.Marshal(map[string]any{"retention_period_in_days": days})
		req, _ := http.NewRequest("PUT", u+"/organizations/"+org+"/audit_logs_retention", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+testAdminKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		rb, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(rb)
	}
	if code, body := put(0); code != 422 {
		t.Fatalf("retention 0: %d %s", code, body)
	}
	if code, body := put(1); code != 200 || !strings.Contains(body, `"retention_period_in_days":1`) {
		t.Fatalf("retention 1: %d %s", code, body)
	}
	// Changing retention is an audit event, in the organization's log.
	if _, body := get(t, u+"/audit_logs/events?organization_id="+org+"&actions=audit_log_retention.updated", testAdminKey); len(body["data"].([]any)) != 1 {
		t.Fatalf("no audit_log_retention.updated event: %v", body)
	}
	// An event older than the retention is now refused.
	old := event(99)
	old["occurred_at"] = time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339Nano)
	if code, _ := post(t, u+"/audit_logs/events", testAdminKey, map[string]any{"organization_id": org, "event": old}); code != 400 {
		t.Fatalf("event older than the retention: %d", code)
	}
	// Wait until every event is in a checkpoint, then purge.
	waitCheckpointText(t, u, org, 42)
	backdated.Store(false)
	out, _, err := runMain(t, env, "purge")
	if err != nil || !strings.Contains(out, "purged 30 events") {
		t.Fatalf("trail purge: %v %s", err, out)
	}
	// The purge is recorded in the log (index 42) before anything goes.
	cp := waitCheckpointText(t, u, org, 43)
	code, purged := get(t, u+"/audit_logs/events/"+ids[3]+"?organization_id="+org, testAdminKey)
	if code != 200 || purged["purged"] != true || purged["index"].(float64) != 4 || purged["id"] != ids[3] || purged["action"] != nil || purged["leaf_hash"] == nil {
		t.Fatalf("purged event: %d %v", code, purged)
	}
	if p, ok := purged["proof"].(map[string]any); !ok || p["checkpoint"] == nil {
		t.Fatalf("purged event without proof: %v", purged)
	}
	// The whole log as an auditor gets it: live events from the API,
	// purged ones as they read, in index order.
	var lines [][]byte
	for i := 0; i < 43; i++ {
		var id string
		first := func(query string) string {
			_, body := get(t, u+"/audit_logs/events?organization_id="+org+"&limit=1&"+query, testAdminKey)
			return body["data"].([]any)[0].(map[string]any)["id"].(string)
		}
		switch {
		case i == 0:
			id = first("order=asc")
		case i <= 40:
			id = ids[i-1]
		case i == 41:
			id = first("actions=audit_log_retention.updated")
		default:
			id = first("actions=audit_log_events.purged")
		}
		lines = append(lines, []byte(getText(t, u+"/audit_logs/events/"+id, testAdminKey)))
	}
	file, cpFile, keyFile := filepath.Join(dir, "log.ndjson"), filepath.Join(dir, "cp.txt"), filepath.Join(dir, "key.txt")
	os.WriteFile(file, append(bytes.Join(lines, []byte("\n")), '\n'), 0o600)
	os.WriteFile(cpFile, []byte(cp), 0o600)
	os.WriteFile(keyFile, []byte(getText(t, u+"/audit_logs/log_key", testAdminKey)), 0o600)
	out, errOut, err := runMain(t, nil, "verify", "--key", keyFile, "--checkpoint", cpFile, file)
	if err != nil || !strings.Contains(out, "43 event(s)") || !strings.Contains(out, "30 purged") {
		t.Fatalf("verify after the purge: %v\n%s%s", err, out, errOut)
	}
	if out, _, err := runMain(t, env, "fsck", "--org", org); err != nil {
		t.Fatalf("fsck after the purge: %v\n%s", err, out)
	}
	retentionExports(t, dir, u, org, keyFile)
}

// retentionExports: trail export writes the same whole log as the API gives: the purged events as placeholders with their proofs, verified as the whole log; a CSV export holds only the events that still have contents.
func retentionExports(t *testing.T, dir, u, org, keyFile string) {
	cli := map[string]string{"TRAIL_URL": u, "TRAIL_API_KEY": testAdminKey}
	nd := filepath.Join(dir, "export.ndjson")
	if _, errOut, err := runMain(t, cli, "export", "--org", org, "--from", "2000-01-01", "--format", "ndjson", "-o", nd); err != nil {
		t.Fatalf("trail export: %v\n%s", err, errOut)
	}
	out, errOut, err := runMain(t, nil, "verify", "--key", keyFile, "--checkpoint", nd+".checkpoint", nd)
	if err != nil || !strings.Contains(out, "44 event(s)") || !strings.Contains(out, "30 purged") || !strings.Contains(out, "whole log") {
		t.Fatalf("verify the export after the purge: %v\n%s%s", err, out, errOut)
	}
	csvFile := filepath.Join(dir, "export.csv")
	if _, errOut, err := runMain(t, cli, "export", "--org", org, "--from", "2000-01-01", "-o", csvFile); err != nil {
		t.Fatalf("trail export: %v\n%s", err, errOut)
	}
	b, _ := os.ReadFile(csvFile)
	if n := strings.Count(string(b), "\n"); n != 1+15 { // header, 45 events of which 30 purged
		t.Fatalf("CSV after the purge: %d lines\n%s", n, b)
	}
}

// waitCheckpointText waits for a checkpoint of at least size events and
// returns it.
func waitCheckpointText(t *testing.T, u, org string, size int) string {
	t.Helper()
	var cp string
	testwait.ForNil(t, 30*time.Second, fmt.Sprintf("a checkpoint of %d events", size), func() error {
		cp = getText(t, u+"/audit_logs/checkpoint?organization_id="+org, testAdminKey)
		if lines := strings.Split(cp, "\n"); len(lines) > 2 && lines[1] == strconv.Itoa(size) {
			return nil
		}
		return fmt.Errorf("no checkpoint of %d events: %s", size, cp)
	})
	return cp
}
