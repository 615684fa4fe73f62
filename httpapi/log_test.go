package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/testwait"
	"github.com/trail-audit/trail/tlog"
)

// waitCheckpoint polls the organization's checkpoint until it covers size
// events and returns it, opened.
func (ts *testServer) waitCheckpoint(t *testing.T, orgID string, size int64) (string, *tlog.OpenedCheckpoint) {
	t.Helper()
	var note string
	var cp *tlog.OpenedCheckpoint
	testwait.ForNil(t, 30*time.Second, fmt.Sprintf("a checkpoint of %d events", size), func() error {
		r := ts.do(t, "GET", "/audit_logs/checkpoint?organization_id="+orgID, adminSecret, nil)
		if r.Status == 200 {
			opened, err := tlog.OpenCheckpoint(r.Body, ts.VKey)
			if err != nil {
				t.Fatalf("checkpoint does not verify: %v\n%s", err, r.Body)
			}
			if opened.Size >= size {
				note, cp = string(r.Body), opened
				return nil
			}
		}
		return fmt.Errorf("no checkpoint of %d events: %d %s", size, r.Status, r.Body)
	})
	return note, cp
}

func b64s(t *testing.T, v any) [][]byte {
	t.Helper()
	var out [][]byte
	for _, h := range v.([]any) {
		b, err := base64.StdEncoding.DecodeString(h.(string))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestTransparencyLog(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_tlog")
		var ids []string
		for i := 0; i < 3; i++ {
			var evs []any
			for j := 0; j < 100; j++ {
				ev := validEvent()
				ev["metadata"] = map[string]any{"n": i*100 + j}
				evs = append(evs, ev)
			}
			r := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, map[string]any{"organization_id": org, "events": evs})
			if r.Status != 200 {
				t.Fatalf("batch: %d %s", r.Status, r.Body)
			}
			for _, d := range r.JSON(t)["data"].([]any) {
				ids = append(ids, d.(map[string]any)["id"].(string))
			}
		}
		note, cp := ts.waitCheckpoint(t, org, 301)
		if cp.Origin != "trail.test/"+org || cp.Size != 301 {
			t.Fatalf("checkpoint %+v", cp)
		}

		t.Run("LogKey", func(t *testing.T) {
			r := ts.do(t, "GET", "/audit_logs/log_key", adminSecret, nil)
			if r.Status != 200 || strings.TrimSpace(string(r.Body)) != ts.VKey || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
				t.Fatalf("%d %q %s", r.Status, r.Body, r.Header.Get("Content-Type"))
			}
		})

		t.Run("EventProof", func(t *testing.T) {
			r := ts.do(t, "GET", "/audit_logs/events/"+ids[150], adminSecret, nil)
			if r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			body := r.JSON(t)
			p, ok := body["proof"].(map[string]any)
			if !ok {
				t.Fatalf("no proof: %s", r.Body)
			}
			if p["checkpoint"] != note || p["tree_size"].(float64) != 301 {
				t.Fatalf("proof %v", p)
			}
			// The event as returned, with its proof, verifies offline.
			res, err := tlog.VerifyOptions{Key: ts.VKey, Checkpoint: []byte(note), Subset: true}.Verify(strings.NewReader(string(r.Body) + "\n"))
			if err != nil || res.Proven != 1 {
				t.Fatalf("%+v %v", res, err)
			}
			leaf, _ := tlog.LeafHashJSON(r.Body)
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(body["index"].(float64)), 301, leaf[:], b64s(t, p["hashes"]), cp.Root[:]); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("InclusionProof", func(t *testing.T) {
			r := ts.do(t, "GET", "/audit_logs/proofs/inclusion?organization_id="+org+"&index=7&tree_size=301", adminSecret, nil)
			if r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			body := r.JSON(t)
			if body["leaf_index"].(float64) != 7 || body["tree_size"].(float64) != 301 {
				t.Fatalf("%s", r.Body)
			}
			ev := ts.do(t, "GET", "/audit_logs/events/"+ids[6], adminSecret, nil) // index 7: organization.created is 0
			leaf, _ := tlog.LeafHashJSON(ev.Body)
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, 7, 301, leaf[:], b64s(t, body["hashes"]), cp.Root[:]); err != nil {
				t.Fatal(err)
			}
			// Without tree_size: the latest checkpoint's.
			if r := ts.do(t, "GET", "/audit_logs/proofs/inclusion?organization_id="+org+"&index=7", adminSecret, nil); r.Status != 200 || r.JSON(t)["tree_size"].(float64) != 301 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})

		t.Run("ConsistencyProof", func(t *testing.T) {
			cps, err := ts.Logs.FindCheckpoints(t.Context(), org, 0, 100)
			if err != nil || len(cps) == 0 {
				t.Fatal(err)
			}
			first := cps[0]
			r := ts.do(t, "GET", fmt.Sprintf("/audit_logs/proofs/consistency?organization_id=%s&first=%d&second=301", org, first.Size), adminSecret, nil)
			if r.Status != 200 {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
			body := r.JSON(t)
			if body["first"].(float64) != float64(first.Size) || body["tree_size"].(float64) != 301 {
				t.Fatalf("%s", r.Body)
			}
			if err := tlog.CheckConsistency([]byte(first.Note), []byte(note), ts.VKey, b64s(t, body["hashes"])); err != nil {
				t.Fatal(err)
			}
			// An earlier checkpoint by size.
			r = ts.do(t, "GET", fmt.Sprintf("/audit_logs/checkpoint?organization_id=%s&tree_size=%d", org, first.Size), adminSecret, nil)
			if r.Status != 200 || string(r.Body) != first.Note {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})

		transparencyLogErrors(t, ts, org)
	})
}

// transparencyLogErrors: the log endpoints refuse bad parameters, other tenants and missing permissions.
func transparencyLogErrors(t *testing.T, ts *testServer, org string) {
	t.Run("Errors", func(t *testing.T) {
		other := ts.mustOrg(t, "org_tlog_other")
		otherKey := ts.mustKey(t, other, trail.PermEventsRead)
		writeOnly := ts.mustKey(t, org, trail.PermEventsWrite)
		for _, c := range []struct {
			path, key string
			status    int
			param     string
		}{
			{"/audit_logs/checkpoint", adminSecret, 400, "organization_id"},
			{"/audit_logs/checkpoint?organization_id=" + org + "&tree_size=2", adminSecret, 404, ""},
			{"/audit_logs/checkpoint?organization_id=" + org + "&tree_size=-1", adminSecret, 400, "tree_size"},
			{"/audit_logs/checkpoint?organization_id=org_nope", adminSecret, 404, ""},
			{"/audit_logs/checkpoint?organization_id=" + org, otherKey, 404, ""},
			{"/audit_logs/checkpoint?organization_id=" + org, writeOnly, 403, ""},
			{"/audit_logs/checkpoint?organization_id=" + org + "&size=3", adminSecret, 400, "size"},
			{"/audit_logs/proofs/inclusion?organization_id=" + org, adminSecret, 400, "index"},
			{"/audit_logs/proofs/inclusion?organization_id=" + org + "&index=x", adminSecret, 400, "index"},
			{"/audit_logs/proofs/inclusion?organization_id=" + org + "&index=1000000", adminSecret, 400, ""},
			{"/audit_logs/proofs/inclusion?organization_id=" + org + "&index=1&tree_size=1000000", adminSecret, 400, ""},
			{"/audit_logs/proofs/inclusion?organization_id=" + org + "&index=1", otherKey, 404, ""},
			{"/audit_logs/proofs/consistency?organization_id=" + org, adminSecret, 400, "first"},
			{"/audit_logs/proofs/consistency?organization_id=" + org + "&first=300&second=200", adminSecret, 400, ""},
			{"/audit_logs/proofs/consistency?organization_id=" + org + "&first=1", otherKey, 404, ""},
			{"/audit_logs/log_key", writeOnly, 403, ""},
			{"/audit_logs/log_key", "", 401, ""},
		} {
			r := ts.do(t, "GET", c.path, c.key, nil)
			if r.Status != c.status {
				t.Errorf("%s: %d %s, want %d", c.path, r.Status, r.Body, c.status)
				continue
			}
			if c.param != "" && !strings.Contains(strings.Join(problemPaths(t, r.JSON(t)), ","), c.param) {
				t.Errorf("%s: %s does not name %s", c.path, r.Body, c.param)
			}
		}
		// An org-scoped key reads its own organization's log without
		// naming it.
		own := ts.mustKey(t, org, trail.PermEventsRead)
		if r := ts.do(t, "GET", "/audit_logs/checkpoint", own, nil); r.Status != 200 {
			t.Fatalf("own checkpoint: %d %s", r.Status, r.Body)
		}
	})
}
