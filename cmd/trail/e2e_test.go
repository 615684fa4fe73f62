package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/internal/testwait"
	_ "modernc.org/sqlite"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// trailBinary builds cmd/trail once for the tests that need a real process.
func trailBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "trail-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "trail")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type process struct {
	cmd     *exec.Cmd
	URL     string
	stderr  *bytes.Buffer
	mu      *sync.Mutex
	exited  chan struct{} // closed when the process has exited
	exitErr error
}

// wait waits for the process to exit and returns how it did.
func (p *process) wait() error {
	<-p.exited
	return p.exitErr
}

func (p *process) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

var urlPattern = regexp.MustCompile(`msg="trail serving" url=(http://[0-9.:]+)`)

// startServe starts `trail serve` and waits until it listens.
func startServe(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	p, err := tryServe(t, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// tryServe is startServe for other goroutines than the test's: it returns
// the error instead of failing the test.
func tryServe(t *testing.T, env []string, args ...string) (*process, error) {
	cmd := exec.Command(trailBinary(t), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, stderr: &bytes.Buffer{}, mu: &sync.Mutex{}, exited: make(chan struct{})}
	found := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := urlPattern.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	go func() {
		p.exitErr = cmd.Wait()
		pw.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.exited
	})
	select {
	case p.URL = <-found:
	case <-p.exited:
		<-scanned
		return nil, fmt.Errorf("trail serve exited (%v):\n%s", p.exitErr, p.Stderr())
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("trail serve did not start:\n%s", p.Stderr())
	}
	return p, nil
}

// post sends body as JSON; hdr is name, value pairs. A status of 0 means
// the server could not be reached.
func post(t *testing.T, url, key string, body any, hdr ...string) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func get(t *testing.T, url, key string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func event(i int) map[string]any {
	return map[string]any{
		"action":      "schedule.updated",
		"occurred_at": time.Now().UTC().Format(time.RFC3339Nano),
		"actor":       map[string]any{"id": fmt.Sprint("user_", i%17), "type": "user"},
		"targets":     []any{map[string]any{"id": fmt.Sprint("sched_", i), "type": "schedule"}},
		"context":     map[string]any{"location": "127.0.0.1"},
		"metadata":    map[string]any{"n": i},
	}
}

const testAdminKey = "sk_e2e_admin_key_0123456789abcdefghij"

// TestCrash ingests under load, kills the server with SIGKILL, restarts it
// and finds every acknowledged event and no gap in any organization's index.
// TestCrash kills trail serve with SIGKILL under load, on SQLite and on
// PostgreSQL, restarts it and finds every acknowledged event, with no gap
// in any organization's index.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testCrash(t, []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + t.TempDir(), "TRAIL_RATE_LIMIT=0"})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testCrash(t, []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + t.TempDir(), "TRAIL_RATE_LIMIT=0",
			"TRAIL_DATABASE_URL=" + pgtest.URL(t)})
	})
}

func testCrash(t *testing.T, env []string) {
	p := startServe(t, env)
	orgs := []string{"org_crash_a", "org_crash_b", "org_crash_c"}
	for _, o := range orgs {
		if code, body := post(t, p.URL+"/organizations", testAdminKey, map[string]any{"id": o, "name": o}); code != 201 {
			t.Fatalf("create %s: %d %v", o, code, body)
		}
	}
	type ack struct {
		org   string
		index int64
	}
	var mu sync.Mutex
	acked := map[string]ack{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				org := orgs[(w+i)%len(orgs)]
				var code int
				var body map[string]any
				if i%4 == 0 {
					evs := []any{event(w*100000 + i), event(w*100000 + i + 50000)}
					code, body = post(t, p.URL+"/audit_logs/events/batch", testAdminKey, map[string]any{"organization_id": org, "events": evs})
					if code == 200 {
						mu.Lock()
						for _, d := range body["data"].([]any) {
							m := d.(map[string]any)
							acked[m["id"].(string)] = ack{org, int64(m["index"].(float64))}
						}
						mu.Unlock()
					}
				} else {
					code, body = post(t, p.URL+"/audit_logs/events", testAdminKey, map[string]any{"organization_id": org, "event": event(w*100000 + i)})
					if code == 200 {
						mu.Lock()
						acked[body["id"].(string)] = ack{org, int64(body["index"].(float64))}
						mu.Unlock()
					}
				}
				if code == 0 {
					return // the server is gone
				}
			}
		}(w)
	}
	// 8000 events acknowledged, or 20 seconds of load: the kill comes
	// either way.
	testwait.Poll(20*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		return atLeast(len(acked), 8000)
	})
	// SIGKILL while requests are in flight.
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait()
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 100 {
		t.Fatalf("only %d events acknowledged before the kill", len(acked))
	}

	p2 := startServe(t, env)
	stored := map[string]ack{}
	for _, org := range orgs {
		for i, id := range readLog(t, p2.URL, org) {
			stored[id] = ack{org, int64(i)}
		}
	}
	for id, a := range acked {
		if s, ok := stored[id]; !ok || s != a {
			t.Fatalf("acknowledged event %s (%v) is missing after the crash (found %v)", id, a, s)
		}
	}
	t.Logf("%d acknowledged events all found; %d stored in all", len(acked), len(stored))
}

// readLog reads an organization's whole log in index order and returns
// the event ids by index; it fails the test on a gap or a repeat.
func readLog(t *testing.T, baseURL, org string) []string {
	t.Helper()
	var ids []string
	after := ""
	for {
		url := baseURL + "/audit_logs/events?order=asc&limit=1000&organization_id=" + org + after
		code, body := get(t, url, testAdminKey)
		if code != 200 {
			t.Fatalf("query: %d %v", code, body)
		}
		for _, d := range body["data"].([]any) {
			m := d.(map[string]any)
			if idx := int(m["index"].(float64)); idx != len(ids) {
				t.Fatalf("%s: index %d where %d was expected: a gap or a repeat", org, idx, len(ids))
			}
			ids = append(ids, m["id"].(string))
		}
		a, _ := body["list_metadata"].(map[string]any)["after"].(string)
		if a == "" {
			return ids
		}
		after = "&after=" + a
	}
}

func TestServe_BootstrapKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	p := startServe(t, []string{"TRAIL_DATA_DIR=" + dir, "TRAIL_ADMIN_KEY="})
	m := regexp.MustCompile(`\n  (sk_[a-z2-7]+)\n`).FindStringSubmatch(p.Stderr())
	if m == nil {
		t.Fatalf("no generated key printed:\n%s", p.Stderr())
	}
	if code, _ := get(t, p.URL+"/api_keys/me", m[1]); code != 200 {
		t.Fatalf("generated key: %d", code)
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("graceful shutdown exited with %v:\n%s", err, p.Stderr())
	}
	if !strings.Contains(p.Stderr(), "shutting down") {
		t.Fatalf("no shutdown log:\n%s", p.Stderr())
	}
	p2 := startServe(t, []string{"TRAIL_DATA_DIR=" + dir, "TRAIL_ADMIN_KEY="})
	if strings.Contains(p2.Stderr(), "sk_") {
		t.Fatalf("the key must be printed only once:\n%s", p2.Stderr())
	}
	if code, _ := get(t, p2.URL+"/api_keys/me", m[1]); code != 200 {
		t.Fatalf("key after restart: %d", code)
	}
	if code, _ := get(t, p2.URL+"/readyz", ""); code != 200 {
		t.Fatalf("readyz: %d", code)
	}
}

func runMain(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	err := m.Run(context.Background(), args)
	return out.String(), errb.String(), err
}

func TestMigrate_RefusesNewerDatabase(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		env := map[string]string{"TRAIL_DATA_DIR": dir}
		if _, _, err := runMain(t, env, "migrate"); err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open("sqlite", filepath.Join(dir, "trail.db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future.sql', 'x')`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, _, err = runMain(t, env, "migrate")
		if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		u := pgtest.URL(t)
		env := map[string]string{"TRAIL_DATA_DIR": t.TempDir(), "TRAIL_DATABASE_URL": u}
		if _, _, err := runMain(t, env, "migrate"); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		pool, err := pgxpool.New(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future.sql', now())`); err != nil {
			t.Fatal(err)
		}
		pool.Close()
		_, _, err = runMain(t, env, "migrate")
		if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestKeysCommand(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testKeysCommand(t, map[string]string{"TRAIL_DATA_DIR": t.TempDir()})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testKeysCommand(t, map[string]string{"TRAIL_DATA_DIR": t.TempDir(), "TRAIL_DATABASE_URL": pgtest.URL(t)})
	})
}

func testKeysCommand(t *testing.T, env map[string]string) {
	secret, _, err := runMain(t, env, "keys", "create", "--name", "ci", "--permissions", "events:write,events:read")
	if err != nil || !strings.HasPrefix(secret, "sk_") {
		t.Fatalf("create: %q %v", secret, err)
	}
	if _, _, err := runMain(t, env, "keys", "create", "--name", "bad", "--permissions", "root"); err == nil {
		t.Fatal("unknown permission accepted")
	}
	if _, _, err := runMain(t, env, "keys", "create", "--name", "x", "--permissions", "events:read", "--org", "org_missing"); err == nil {
		t.Fatal("unknown organization accepted")
	}
	out, _, err := runMain(t, env, "keys", "list")
	if err != nil || !strings.Contains(out, "ci") || !strings.Contains(out, "events:write,events:read") || strings.Contains(out, strings.TrimSpace(secret)) {
		t.Fatalf("list: %q %v", out, err)
	}
	id := regexp.MustCompile(`key_[0-9A-Z]{26}`).FindString(out)
	if _, _, err := runMain(t, env, "keys", "revoke", id); err != nil {
		t.Fatal(err)
	}
	out, _, _ = runMain(t, env, "keys", "list")
	if !regexp.MustCompile(`ci .*\d{4}-\d\d-\d\dT\S+\s+\d{4}-`).MatchString(out) {
		t.Fatalf("revoked key not shown as revoked: %q", out)
	}
}

func TestServe_Demo(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { t.Parallel(); testServeDemo(t, "") })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testServeDemo(t, pgtest.URL(t)) })
}

func testServeDemo(t *testing.T, databaseURL string) {
	var stderr bytes.Buffer
	s := &Server{stderr: &stderr, stdout: io.Discard}
	s.dataDir, s.Addr, s.Demo, s.DemoEvents, s.LogLevel, s.LogFormat = t.TempDir(), "127.0.0.1:0", true, 3000, "info", "text"
	s.databaseURL = databaseURL
	s.AdminKey = testAdminKey
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	code, body := get(t, s.HTTP.URL()+"/audit_logs/events?organization_id=org_demo&limit=1000", testAdminKey)
	if code != 200 || len(body["data"].([]any)) != 1000 || body["list_metadata"].(map[string]any)["after"] == nil {
		t.Fatalf("demo events: %d", code)
	}
	actorTypes := map[string]bool{}
	for _, d := range body["data"].([]any) {
		actorTypes[d.(map[string]any)["actor"].(map[string]any)["type"].(string)] = true
	}
	if len(actorTypes) < 3 {
		t.Fatalf("actor types %v", actorTypes)
	}
	if !strings.Contains(stderr.String(), "organization_id=org_demo") {
		t.Fatalf("no query instructions printed:\n%s", stderr.String())
	}
	_, acts := get(t, s.HTTP.URL()+"/audit_logs/actions?limit=100", testAdminKey)
	if len(acts["data"].([]any)) != 100 {
		t.Fatalf("demo schemas missing")
	}
}

// TestServe_RevokedAdminKeyRefused: a TRAIL_ADMIN_KEY whose key was
// revoked does not come back as a new key; serve refuses to start.
func TestServe_RevokedAdminKeyRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() (*Server, error) {
		s := &Server{stderr: io.Discard, stdout: io.Discard}
		s.dataDir, s.Addr, s.LogLevel, s.LogFormat, s.AdminKey = dir, "127.0.0.1:0", "warn", "text", testAdminKey
		return s, s.Open(context.Background())
	}
	s, err := open()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	env := map[string]string{"TRAIL_DATA_DIR": dir}
	out, _, err := runMain(t, env, "keys", "list")
	id := regexp.MustCompile(`key_[0-9A-Z]{26}`).FindString(out)
	if err != nil || id == "" {
		t.Fatalf("list: %q %v", out, err)
	}
	if _, _, err := runMain(t, env, "keys", "revoke", id); err != nil {
		t.Fatal(err)
	}
	s, err = open()
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("serve with a revoked TRAIL_ADMIN_KEY: %v", err)
	}
}
