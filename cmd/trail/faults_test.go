package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/trail-audit/trail/internal/testwait"
)

// requireFaults skips a fault test that this machine cannot run (it needs
// root, to mount a filesystem or to run a PostgreSQL server of its own),
// unless TRAIL_REQUIRE_FAULTS=1, which CI sets, makes that a failure.
func requireFaults(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("TRAIL_REQUIRE_FAULTS") == "1" {
		t.Fatalf("fault test cannot run: %s (TRAIL_REQUIRE_FAULTS=1)", why)
	}
	t.Skipf("fault test skipped: %s", why)
}

// faultLoad posts batches of events until stop says so, from a few
// clients, and returns the ids of the events acknowledged (200) and how
// many requests got each status. Every 503 must carry Retry-After.
type faultLoad struct {
	mu       sync.Mutex
	acked    map[string]bool
	statuses map[int]int
	badRetry int
	errs     int
}

func (l *faultLoad) run(t *testing.T, u, org string, clients int, pad int, stop func(*faultLoad) bool) {
	t.Helper()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				l.mu.Lock()
				done := stop(l)
				l.mu.Unlock()
				if done {
					return
				}
				var evs []any
				for j := 0; j < 20; j++ {
					ev := event(c*1_000_000 + i*20 + j)
					if pad > 0 {
						ev["metadata"] = map[string]any{"a": strings.Repeat("a", pad), "b": strings.Repeat("b", pad), "n": i}
					}
					evs = append(evs, ev)
				}
				b, _ := json.Marshal(map[string]any{"organization_id": org, "events": evs})
				req, _ := http.NewRequest("POST", u+"/audit_logs/events/batch", bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+testAdminKey)
				resp, err := http.DefaultClient.Do(req)
				l.mu.Lock()
				if err != nil {
					l.errs++
					l.mu.Unlock()
					time.Sleep(50 * time.Millisecond) // the server restarting: a client backs off
					continue
				}
				var body struct {
					Data []struct {
						ID string `json:"id"`
					} `json:"data"`
				}
				json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				l.statuses[resp.StatusCode]++
				switch resp.StatusCode {
				case 200:
					for _, d := range body.Data {
						if d.ID != "" {
							l.acked[d.ID] = true
						}
					}
				case 503:
					if resp.Header.Get("Retry-After") == "" {
						l.badRetry++
					}
				}
				l.mu.Unlock()
				if resp.StatusCode == 503 {
					time.Sleep(20 * time.Millisecond) // as a client honouring Retry-After would, sooner
				}
			}
		}()
	}
	wg.Wait()
}

// check fails unless every request got 200 or 503, each 503 with
// Retry-After, and every request an answer.
func (l *faultLoad) check(t *testing.T, when string) {
	t.Helper()
	for status, n := range l.statuses {
		if status != 200 && status != 503 {
			t.Fatalf("%d requests got %d %s: only 200 and 503 are right", n, status, when)
		}
	}
	if l.badRetry > 0 || l.errs > 0 {
		t.Fatalf("%d 503s without Retry-After, %d requests without an answer", l.badRetry, l.errs)
	}
}

// checkAcked checks that every acknowledged event is stored, that the
// log's tree covers them all and that trail fsck passes.
func checkAcked(t *testing.T, u, org string, env map[string]string, acked map[string]bool) {
	t.Helper()
	_, latest := get(t, u+"/audit_logs/events?organization_id="+org+"&limit=1", testAdminKey)
	data, _ := latest["data"].([]any)
	if len(data) == 0 {
		t.Fatal("no events")
	}
	size := int(data[0].(map[string]any)["index"].(float64)) + 1
	waitCheckpointText(t, u, org, size)
	found := map[string]bool{}
	after := ""
	for {
		_, page := get(t, u+"/audit_logs/events?organization_id="+org+"&order=asc&limit=1000"+after, testAdminKey)
		evs, _ := page["data"].([]any)
		for _, e := range evs {
			m := e.(map[string]any)
			found[m["id"].(string)] = true
			if int(m["index"].(float64)) != len(found)-1 {
				t.Fatalf("index %v at position %d: the log has a gap", m["index"], len(found)-1)
			}
		}
		a, _ := page["list_metadata"].(map[string]any)["after"].(string)
		if a == "" || len(evs) == 0 {
			break
		}
		after = "&after=" + a
	}
	if len(found) != size {
		t.Fatalf("%d events listed, the log's head says %d", len(found), size)
	}
	for id := range acked {
		if !found[id] {
			t.Fatalf("acknowledged event %s is lost", id)
		}
	}
	if out, _, err := runMain(t, env, "fsck", "--org", org); err != nil {
		t.Fatalf("fsck: %v\n%s", err, out)
	}
}

// TestFaults_DiskFull: the data directory's filesystem fills up during a
// load. Every request that cannot be made durable gets a 503 with
// Retry-After (never a 200, never a 500), nothing acknowledged is lost, the
// server stays up, takes writes again once space is freed, and fsck passes
// (issue 16, point 11). SQLite, on a small tmpfs the test mounts.
func TestFaults_DiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a filesystem")
	}
	if os.Geteuid() != 0 {
		requireFaults(t, "mounting a filesystem needs root")
	}
	dir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(dir, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		requireFaults(t, fmt.Sprintf("mount tmpfs: %v %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	env := map[string]string{"TRAIL_DATA_DIR": dir}
	s := openServer(t, dir, "")
	closed := false
	t.Cleanup(func() {
		if !closed {
			s.Close()
		}
	})
	u := s.HTTP.URL()
	const org = "org_disk_full"
	if code, body := post(t, u+"/organizations", testAdminKey, map[string]any{"id": org, "name": "Disk full"}); code != 201 {
		t.Fatalf("%d %v", code, body)
	}
	// Leave about 4 MiB free.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, max(free-4<<20, 0)), 0o600); err != nil {
		t.Fatal(err)
	}

	load := &faultLoad{acked: map[string]bool{}, statuses: map[int]int{}}
	deadline := time.Now().Add(90 * time.Second)
	load.run(t, u, org, 4, 400, func(l *faultLoad) bool {
		return l.statuses[503] >= 30 || l.statuses[200] >= 5000 || time.Now().After(deadline)
	})
	t.Logf("while full: %v statuses, %d acknowledged", load.statuses, len(load.acked))
	if load.statuses[503] == 0 {
		t.Fatalf("the filesystem never filled: %v", load.statuses)
	}
	load.check(t, "while the disk was full")
	if code, _ := get(t, u+"/healthz", ""); code != 200 {
		t.Fatalf("healthz while full: %d", code)
	}

	// Space is freed: writes are taken again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	after := &faultLoad{acked: map[string]bool{}, statuses: map[int]int{}}
	deadline = time.Now().Add(30 * time.Second)
	after.run(t, u, org, 1, 0, func(l *faultLoad) bool { return l.statuses[200] >= 5 || time.Now().After(deadline) })
	if after.statuses[200] < 5 {
		t.Fatalf("no writes taken after space was freed: %v", after.statuses)
	}
	for id := range after.acked {
		load.acked[id] = true
	}
	checkAcked(t, u, org, env, load.acked)
	s.Close()
	closed = true
	// And after a restart on the same files.
	s = openServer(t, dir, "")
	closed = false
	checkAcked(t, s.HTTP.URL(), org, env, load.acked)
}

// ownPostgres is a PostgreSQL server of the test's own: initdb into a
// temporary directory, run as the postgres user, on a free port.
type ownPostgres struct {
	bin, dir, port string
}

func startOwnPostgres(t *testing.T) *ownPostgres {
	t.Helper()
	if os.Geteuid() != 0 {
		requireFaults(t, "running a PostgreSQL server of its own needs root (to run it as the postgres user)")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		requireFaults(t, "no initdb under /usr/lib/postgresql")
	}
	p := &ownPostgres{bin: filepath.Dir(bins[len(bins)-1])}
	var err error
	if p.dir, err = os.MkdirTemp("", "trail-pg-"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(p.dir) })
	if out, err := exec.Command("chown", "postgres:postgres", p.dir).CombinedOutput(); err != nil {
		requireFaults(t, fmt.Sprintf("chown: %v %s", err, out))
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	if out, err := p.run("initdb", "-D", filepath.Join(p.dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	if err := p.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop") })
	return p
}

func (p *ownPostgres) run(name string, args ...string) ([]byte, error) {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...).CombinedOutput()
}

func (p *ownPostgres) start() error {
	out, err := p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-l", filepath.Join(p.dir, "log"), "-w",
		"-o", "-p "+p.port+" -k "+p.dir+" -c listen_addresses=127.0.0.1", "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		return fmt.Errorf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	return nil
}

func (p *ownPostgres) stop() error {
	if out, err := p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

func (p *ownPostgres) url() string {
	return "postgres://postgres@127.0.0.1:" + p.port + "/postgres?sslmode=disable"
}

// TestFaults_PostgresRestart: the PostgreSQL server stops and starts again
// under load. Requests during the outage get 503s with Retry-After (never
// a 500), Trail reconnects by itself, nothing acknowledged is lost, the
// log stays gapless and fsck passes (issue 16, point 12).
func TestFaults_PostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a PostgreSQL server")
	}
	pg := startOwnPostgres(t)
	dir := t.TempDir()
	env := map[string]string{"TRAIL_DATA_DIR": dir, "TRAIL_DATABASE_URL": pg.url()}
	s := openServer(t, dir, pg.url())
	defer s.Close()
	u := s.HTTP.URL()
	const org = "org_pg_restart"
	if code, body := post(t, u+"/organizations", testAdminKey, map[string]any{"id": org, "name": "Restart"}); code != 201 {
		t.Fatalf("%d %v", code, body)
	}
	load := &faultLoad{acked: map[string]bool{}, statuses: map[int]int{}}
	outage503 := 0
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		// Some load first, then the outage.
		testwait.Poll(30*time.Second, func() error {
			load.mu.Lock()
			defer load.mu.Unlock()
			return atLeast(load.statuses[200], 20)
		})
		load.mu.Lock()
		before := load.statuses[503]
		load.mu.Unlock()
		if err := pg.stop(); err != nil {
			t.Error(err)
		}
		// Down for a while: requests meanwhile must be 503s.
		testwait.Poll(10*time.Second, func() error {
			load.mu.Lock()
			defer load.mu.Unlock()
			return atLeast(load.statuses[503]-before, 20)
		})
		load.mu.Lock()
		outage503 = load.statuses[503] - before
		load.mu.Unlock()
		if err := pg.start(); err != nil {
			t.Error(err)
		}
	}()
	deadline := time.Now().Add(90 * time.Second)
	var acksAfter int
	load.run(t, u, org, 4, 0, func(l *faultLoad) bool {
		select {
		case <-restarted:
			// Up again: stop once writes are taken anew.
			if acksAfter == 0 {
				acksAfter = l.statuses[200] + 20
			}
			return l.statuses[200] >= acksAfter || time.Now().After(deadline)
		default:
			return time.Now().After(deadline)
		}
	})
	<-restarted
	t.Logf("statuses %v, %d acknowledged, %d 503s while down", load.statuses, len(load.acked), outage503)
	if outage503 == 0 {
		t.Fatalf("no request met the outage: %v", load.statuses)
	}
	load.check(t, "around the restart")
	if load.statuses[200] < acksAfter {
		t.Fatalf("Trail did not take writes again after the restart: %v", load.statuses)
	}
	checkAcked(t, u, org, env, load.acked)
}
