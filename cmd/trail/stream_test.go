package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/internal/receiver"
	"github.com/trail-audit/trail/internal/testwait"
)

// createStream creates a GenericHttps stream to url and returns its id and
// first index.
func createStream(t *testing.T, base, org, url string) (string, int64) {
	t.Helper()
	code, body := post(t, base+"/audit_logs/streams", testAdminKey, map[string]any{"organization_id": org, "type": "GenericHttps",
		"name": "e2e", "config": map[string]any{"url": url, "format": "ndjson"}})
	if code != 201 {
		t.Fatalf("create stream: %d %v", code, body)
	}
	return body["id"].(string), int64(body["cursor"].(float64))
}

// waitAllDelivered waits until the receiver has every event of the
// organization's log from first on, and checks their order.
func waitAllDelivered(t *testing.T, base, org string, rcv *receiver.Webhook, first int64) {
	t.Helper()
	var ids []string
	testwait.ForNil(t, 90*time.Second, "every event delivered", func() error {
		ids = readLog(t, base, org)
		d, _ := receiver.Indexes(rcv.Events())
		if len(d) == len(ids)-int(first) && (len(d) == 0 || d[0] == first && d[len(d)-1] == int64(len(ids)-1)) {
			return nil
		}
		return fmt.Errorf("delivered %d of %d events", len(d), len(ids)-int(first))
	})
	evs := rcv.Events()
	if err := receiver.CheckOrder(evs); err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if ids[e.Index] != e.ID {
			t.Fatalf("index %d delivered as %s, stored as %s", e.Index, e.ID, ids[e.Index])
		}
	}
}

// ingest posts batches of events until stop is closed.
func ingest(t *testing.T, base, org string, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		evs := make([]any, 20)
		for j := range evs {
			evs[j] = event(i*20 + j)
		}
		if code, _ := post(t, base+"/audit_logs/events/batch", testAdminKey, map[string]any{"organization_id": org, "events": evs}); code == 0 {
			return
		}
	}
}

// TestStreams_Crash kills trail serve with SIGKILL while it delivers a
// stream under load, restarts it, and finds every event delivered, in
// order, none missing (some batches twice: at least once).
func TestStreams_Crash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			env := []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + t.TempDir(), "TRAIL_RATE_LIMIT=0", "TRAIL_ALLOW_PRIVATE_DESTINATIONS=true"}
			if driver == "postgres" {
				env = append(env, "TRAIL_DATABASE_URL="+pgtest.URL(t))
			}
			rcv := receiver.NewWebhook(false, nil)
			defer rcv.Close()
			p := startServe(t, env)
			org := "org_stream_crash"
			if code, body := post(t, p.URL+"/organizations", testAdminKey, map[string]any{"id": org, "name": org}); code != 201 {
				t.Fatalf("create org: %d %v", code, body)
			}
			_, first := createStream(t, p.URL, org, rcv.URL()+"/in")
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() { ingest(t, p.URL, org, stop) })
			}
			// 2000 events delivered, or 30 seconds of load: the kill
			// comes either way.
			testwait.Poll(30*time.Second, func() error { return atLeast(len(rcv.Events()), 2000) })
			if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			p.wait()
			close(stop)
			wg.Wait()
			n := len(rcv.Events())
			p2 := startServe(t, env)
			waitAllDelivered(t, p2.URL, org, rcv, first)
			_, repeats := receiver.Indexes(rcv.Events())
			t.Logf("%d events before the kill, %d in all, %d delivered twice", n, len(rcv.Events()), repeats)
		})
	}
}

// TestStreams_MultiNode: on PostgreSQL one node delivers a stream at a
// time; when it dies, the other takes the stream over after the lease and
// delivers the rest. A node with another secret key refuses to start.
func TestStreams_MultiNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dbURL, dir := pgtest.URL(t), t.TempDir()
	env := []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_RATE_LIMIT=0", "TRAIL_DATABASE_URL=" + dbURL,
		"TRAIL_SIGNING_KEY_FILE=" + filepath.Join(dir, "log-signing.key"), "TRAIL_SECRET_KEY_FILE=" + filepath.Join(dir, "secret.key"),
		"TRAIL_ALLOW_PRIVATE_DESTINATIONS=true", "TRAIL_STREAM_LEASE=2s"}
	a := startServe(t, append(env, "TRAIL_DATA_DIR="+t.TempDir()))
	b := startServe(t, append(env, "TRAIL_DATA_DIR="+t.TempDir()))
	rcv := receiver.NewWebhook(false, nil)
	defer rcv.Close()
	org := "org_stream_multi"
	if code, body := post(t, a.URL+"/organizations", testAdminKey, map[string]any{"id": org, "name": org}); code != 201 {
		t.Fatalf("create org: %d %v", code, body)
	}
	id, first := createStream(t, b.URL, org, rcv.URL()+"/in")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, n := range []*process{a, b} {
		wg.Go(func() { ingest(t, n.URL, org, stop) })
	}
	// 1000 events delivered, or 30 seconds of load: the test goes on
	// either way.
	testwait.Poll(30*time.Second, func() error { return atLeast(len(rcv.Events()), 1000) })
	claimed := func(p *process) int {
		return strings.Count(p.Stderr(), `msg="log stream claimed; delivering" stream=`+id)
	}
	holder, other := a, b
	if claimed(b) > 0 {
		holder, other = b, a
	}
	if claimed(holder) != 1 || claimed(other) != 0 {
		t.Fatalf("claims: %d and %d, want one node", claimed(holder), claimed(other))
	}
	// The holder dies; the other node takes over after the lease.
	if err := syscall.Kill(-holder.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	holder.wait()
	killed := time.Now()
	close(stop)
	wg.Wait()
	stop2 := make(chan struct{})
	go ingest(t, other.URL, org, stop2)
	time.Sleep(time.Second)
	close(stop2)
	waitAllDelivered(t, other.URL, org, rcv, first)
	if claimed(other) != 1 {
		t.Fatalf("the surviving node claimed the stream %d times:\n%s", claimed(other), other.Stderr())
	}
	t.Logf("taken over and caught up %s after the kill", time.Since(killed).Round(100*time.Millisecond))

	// A node with another secret key cannot open the streams' secrets:
	// it refuses to start, saying so.
	bad := append(env, "TRAIL_DATA_DIR="+t.TempDir())
	bad[4] = "TRAIL_SECRET_KEY_FILE=" + filepath.Join(t.TempDir(), "other.key")
	if _, err := tryServe(t, bad); err == nil || !strings.Contains(err.Error(), "is not the one this database's log stream secrets are sealed with") {
		t.Fatalf("a node with another secret key: %v", err)
	}
	code, body := get(t, other.URL+"/audit_logs/streams/"+id, testAdminKey)
	if code != http.StatusOK || body["state"] != "active" || body["lag"] != 0.0 {
		t.Fatalf("stream after the takeover: %d %v", code, body)
	}
}

// atLeast is nil when n ≥ want, for testwait.Poll.
func atLeast(n, want int) error {
	if n < want {
		return fmt.Errorf("%d of %d", n, want)
	}
	return nil
}
