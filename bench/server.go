package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/demo"
	"github.com/trail-audit/trail/postgres"
)

// adminKey is the servers' TRAIL_ADMIN_KEY, which every request carries.
const adminKey = "sk_bench_admin_key_0123456789abcdefghijkl"

// target is one database the scenarios run on: SQLite in a data
// directory, or a schema of a PostgreSQL database, with nodes trail serve
// processes sharing it.
type target struct {
	driver string
	nodes  int
	dir    string // data directory (SQLite's database; every node's keys)
	url    string // --database-url; "" for SQLite in dir
}

func (t target) label() string {
	if t.driver == "postgres" {
		return fmt.Sprintf("postgres, %d node(s)", t.nodes)
	}
	return "sqlite"
}

// newTarget prepares a fresh database for an ingest scenario: a temporary
// directory, and on PostgreSQL a new schema. cleanup removes both.
func (r *runner) newTarget(ctx context.Context, driver string, nodes int) (target, func(), error) {
	dir, err := os.MkdirTemp("", "trail-bench")
	if err != nil {
		return target{}, nil, err
	}
	t := target{driver: driver, nodes: nodes, dir: dir}
	if driver != "postgres" {
		return t, func() { os.RemoveAll(dir) }, nil
	}
	schema := fmt.Sprintf("trail_bench_%d", time.Now().UnixNano())
	if t.url, err = postgres.CreateSchema(ctx, r.c.DatabaseURL, schema); err != nil {
		os.RemoveAll(dir)
		return t, nil, err
	}
	return t, func() {
		os.RemoveAll(dir)
		if err := postgres.DropSchema(context.Background(), r.c.DatabaseURL, schema); err != nil {
			fmt.Fprintf(r.log, "drop schema %s: %v\n", schema, err)
		}
	}, nil
}

// startNodes starts the target's trail serve processes one after another.
func (r *runner) startNodes(ctx context.Context, t target) ([]*server, error) {
	var srvs []*server
	for i := 0; i < t.nodes; i++ {
		s, err := r.startServer(ctx, t.dir, t.url)
		if err != nil {
			for _, s := range srvs {
				s.stop()
			}
			return nil, err
		}
		srvs = append(srvs, s)
	}
	return srvs, nil
}

// peakRSS returns the highest peak RSS of the servers, in MiB.
func peakRSS(srvs []*server) float64 {
	var m float64
	for _, s := range srvs {
		m = max(m, s.peakRSS())
	}
	return m
}

// server is a trail serve child process.
type server struct {
	cmd *exec.Cmd
	url string
}

var servingPattern = regexp.MustCompile(`msg="trail serving" url=(http://[0-9.:]+)`)

// startServer starts trail serve on dataDir (and the database at dbURL,
// if set) and waits until it listens.
func (r *runner) startServer(ctx context.Context, dataDir, dbURL string, args ...string) (*server, error) {
	cmd := exec.CommandContext(ctx, r.c.Executable, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--rate-limit", "0", "--log-level", "warn"}, args...)...)
	if dbURL != "" {
		cmd.Args = append(cmd.Args, "--database-url", dbURL)
	}
	cmd.Env = append(os.Environ(), "TRAIL_ADMIN_KEY="+adminKey)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Args = append(cmd.Args, "--log-level", "info")
	if a := os.Getenv("TRAIL_BENCH_PPROF_ADDR"); a != "" {
		cmd.Args = append(cmd.Args, "--pprof-addr", a)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	found, ended := make(chan string, 1), make(chan struct{})
	tail := &lastLines{n: 20}
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			tail.add(sc.Text())
			if m := servingPattern.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case u := <-found:
		return &server{cmd: cmd, url: u}, nil
	case <-ended:
		err := cmd.Wait()
		return nil, fmt.Errorf("server exited before serving (%v); its last output:\n%s", err, tail)
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return nil, fmt.Errorf("server did not start within 2 minutes; its last output:\n%s", tail)
	}
}

// lastLines keeps the last n lines written to it, for an error message.
// It is safe for concurrent use.
type lastLines struct {
	mu    sync.Mutex // mu guards lines
	n     int
	lines []string
}

func (l *lastLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == l.n {
		l.lines = l.lines[1:]
	}
	l.lines = append(l.lines, line)
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return "(none)"
	}
	return strings.Join(l.lines, "\n")
}

var vmHWM = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

// peakRSS returns the child's peak resident set size in MiB.
func (s *server) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	m := vmHWM.FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}

// stop interrupts the child and waits for it, killing it after 20 s.
func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// do sends a request with the admin key and returns the response's status
// and body. hdr holds further header names and values, in pairs.
func (r *runner) do(method, url string, body []byte, hdr ...string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// latencies collects request durations. It is safe for concurrent use.
type latencies struct {
	mu sync.Mutex // mu guards d
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

// pct returns the p-quantile (0 ≤ p ≤ 1) of the durations, 0 for none.
func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	i := int(float64(len(l.d)-1) * p)
	return l.d[i]
}

// count returns how many durations were added.
func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// event returns a realistic event of the catalogue.
func event(rng *rand.Rand, catalog []demo.CatalogEntry, at time.Time) *trail.EventInput {
	e := catalog[rng.IntN(len(catalog))]
	in := &trail.EventInput{
		Action: e.Action, OccurredAt: at,
		Actor:   trail.Actor{ID: fmt.Sprintf("user_%04d", rng.IntN(2000)), Type: []string{"user", "user", "user", "api_key", "workflow"}[rng.IntN(5)], Name: fmt.Sprintf("Person %d", rng.IntN(2000))},
		Context: trail.EventContext{Location: fmt.Sprintf("203.0.%d.%d", rng.IntN(256), rng.IntN(256)), UserAgent: "Mozilla/5.0 (X11; Linux x86_64) bench"},
	}
	for _, t := range e.TargetTypes {
		in.Targets = append(in.Targets, trail.Target{ID: fmt.Sprintf("%s_%05d", t, rng.IntN(50000)), Type: t, Name: fmt.Sprintf("%s %d", t, rng.IntN(100))})
	}
	in.Metadata = trail.Metadata{"ticket": fmt.Sprintf("INC-%d", rng.IntN(100000)), "severity": []string{"sev1", "sev2", "sev3"}[rng.IntN(3)]}
	return in
}

// startOrgs starts the nodes of a fresh target and creates the
// organizations org_<prefix>00 … of the scenario. stop stops the nodes and
// removes the target.
func (r *runner) startOrgs(ctx context.Context, driver string, nodes int, prefix string, orgs int) (target, []*server, func(), error) {
	t, cleanup, err := r.newTarget(ctx, driver, nodes)
	if err != nil {
		return t, nil, nil, err
	}
	srvs, err := r.startNodes(ctx, t)
	if err != nil {
		cleanup()
		return t, nil, nil, err
	}
	stop := func() {
		for _, s := range srvs {
			s.stop()
		}
		cleanup()
	}
	for i := 0; i < orgs; i++ {
		if err := r.createOrg(srvs[0], fmt.Sprintf("org_%s%02d", prefix, i), prefix); err != nil {
			stop()
			return t, nil, nil, err
		}
	}
	return t, srvs, stop, nil
}

// createOrg creates an organization through the API.
func (r *runner) createOrg(s *server, id, name string) error {
	body, _ := json.Marshal(map[string]string{"id": id, "name": name})
	if code, b, err := r.do("POST", s.url+"/organizations", body); err != nil || code != 201 {
		return fmt.Errorf("create organization: %d %s %v", code, b, err)
	}
	return nil
}

// eventPool returns n encoded events of the catalogue at at(i), made
// before a scenario's clock starts.
func eventPool(seed1, seed2 uint64, n int, at func(i int) time.Time) ([][]byte, []demo.CatalogEntry, error) {
	catalog, err := demo.Catalog()
	if err != nil {
		return nil, nil, err
	}
	rng := rand.New(rand.NewPCG(seed1, seed2))
	pool := make([][]byte, n)
	for i := range pool {
		if pool[i], err = json.Marshal(event(rng, catalog, at(i))); err != nil {
			return nil, nil, err
		}
	}
	return pool, catalog, nil
}
