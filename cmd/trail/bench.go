package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/internal/demo"
	"github.com/trail-audit/trail/tlog"
)

// benchPostgresURL is the PostgreSQL server of --drivers postgres when no
// --database-url is given.
const benchPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

const benchKey = "sk_bench_admin_key_0123456789abcdefghijkl"

type benchConfig struct {
	scenarios     string
	duration      time.Duration
	clients       int
	batchSize     int
	batchConc     int
	queryEvents   int
	exportFormats string
	queries       int
	warmup        int
	dataDir       string
	drivers       string
	databaseURL   string
	nodes         string
	lagRate       int
	streamEvents  int
	streamRate    int
}

// benchTarget is one database the scenarios run on: SQLite in a data
// directory, or a schema of a PostgreSQL database, with nodes trail serve
// processes sharing it.
type benchTarget struct {
	driver string
	nodes  int
	dir    string // data directory (SQLite's database; every node's keys)
	url    string // --database-url; "" for SQLite in dir
}

func (t benchTarget) label() string {
	if t.driver == "postgres" {
		return fmt.Sprintf("postgres, %d node(s)", t.nodes)
	}
	return "sqlite"
}

func (m *Main) runBench(ctx context.Context, args []string) error {
	fs := m.newFlagSet("bench", "Start `trail serve` on a temporary directory and measure it over HTTP.")
	var c benchConfig
	fs.StringVar(&c.scenarios, "scenarios", "single,batch,lag,query", "comma list of single, batch, lag, query, export, streams, ui, fsck")
	fs.IntVar(&c.streamEvents, "stream-events", 200_000, "events pre-loaded for the throughput of the streams scenario")
	fs.IntVar(&c.streamRate, "stream-rate", 1000, "events a second of the streams scenario's latency measurement")
	fs.IntVar(&c.lagRate, "lag-rate", 10000, "events a second of the lag scenario, which measures the time from acceptance to being in a signed checkpoint")
	fs.DurationVar(&c.duration, "duration", 15*time.Second, "how long each ingest scenario runs")
	fs.IntVar(&c.clients, "clients", 64, "concurrent clients of the single-event scenario")
	fs.IntVar(&c.batchSize, "batch-size", 500, "events per batch request")
	fs.IntVar(&c.batchConc, "batch-clients", 4, "concurrent clients of the batch scenario")
	fs.IntVar(&c.queryEvents, "query-events", 10_000_000, "events pre-loaded for the query and export scenarios")
	fs.IntVar(&c.queries, "queries", 300, "queries per filter in the query scenario")
	fs.IntVar(&c.warmup, "warmup", 60, "untimed queries per filter before the timed ones, so that the database's working set is cached (raise it when another database on the machine ran just before)")
	fs.StringVar(&c.dataDir, "data-dir", "", "keep the query scenario's SQLite database here and reuse it (default: a temporary directory)")
	fs.StringVar(&c.drivers, "drivers", "", "comma list of sqlite and postgres: each scenario runs on each, side by side (default sqlite, or sqlite,postgres with --database-url)")
	fs.StringVar(&c.databaseURL, "database-url", "", "PostgreSQL server for the postgres driver (default "+benchPostgresURL+"); ingest runs in a fresh schema, the query scenario keeps its events in schema trail_bench_query and its keys in $TMPDIR/trail_bench_query-<hash of the URL>")
	fs.StringVar(&c.exportFormats, "export-formats", "csv,csv.gz,ndjson", "comma list of csv, csv.gz and ndjson: the files of the export scenario")
	fs.StringVar(&c.nodes, "nodes", "1", "comma list of node counts for the postgres ingest scenarios (e.g. 1,2)")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "trail bench %s, %d CPUs, %s\n\n", version(), numCPU(), time.Now().UTC().Format(time.RFC3339))
	switch {
	case c.drivers == "" && c.databaseURL != "":
		c.drivers = "sqlite,postgres"
	case c.drivers == "":
		c.drivers = "sqlite"
	}
	if c.databaseURL == "" {
		c.databaseURL = benchPostgresURL
	}
	var nodeCounts []int
	for _, n := range strings.Split(c.nodes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || v < 1 {
			return fmt.Errorf("--nodes %q: want a comma list of counts ≥ 1", c.nodes)
		}
		nodeCounts = append(nodeCounts, v)
	}
	for _, sc := range strings.Split(c.scenarios, ",") {
		sc = strings.TrimSpace(sc)
		for _, driver := range strings.Split(c.drivers, ",") {
			driver = strings.TrimSpace(driver)
			if driver != "sqlite" && driver != "postgres" {
				return fmt.Errorf("--drivers: unknown driver %q", driver)
			}
			counts := []int{1}
			if driver == "postgres" && sc != "query" && sc != "export" && sc != "streams" && sc != "ui" && sc != "fsck" {
				counts = nodeCounts
			}
			for _, nodes := range counts {
				var err error
				switch sc {
				case "single":
					err = m.benchIngest(ctx, self, c, driver, nodes, false)
				case "batch":
					err = m.benchIngest(ctx, self, c, driver, nodes, true)
				case "lag":
					err = m.benchLag(ctx, self, c, driver, nodes)
				case "query":
					err = m.benchQuery(ctx, self, c, driver)
				case "export":
					err = m.benchExport(ctx, self, c, driver)
				case "streams":
					err = m.benchStreams(ctx, self, c, driver)
				case "ui":
					err = m.benchUI(ctx, self, c, driver)
				case "fsck":
					err = m.benchFsck(ctx, self, c, driver)
				default:
					err = fmt.Errorf("unknown scenario %q", sc)
				}
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// newBenchTarget prepares a fresh database for an ingest scenario: a
// temporary directory, and on PostgreSQL a new schema. cleanup removes both.
func newBenchTarget(ctx context.Context, c benchConfig, driver string, nodes int) (benchTarget, func(), error) {
	dir, err := os.MkdirTemp("", "trail-bench")
	if err != nil {
		return benchTarget{}, nil, err
	}
	t := benchTarget{driver: driver, nodes: nodes, dir: dir}
	if driver != "postgres" {
		return t, func() { os.RemoveAll(dir) }, nil
	}
	schema := fmt.Sprintf("trail_bench_%d", time.Now().UnixNano())
	if t.url, err = benchSchema(ctx, c.databaseURL, schema); err != nil {
		os.RemoveAll(dir)
		return t, nil, err
	}
	return t, func() {
		os.RemoveAll(dir)
		if err := benchExec(context.Background(), c.databaseURL, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			fmt.Fprintf(os.Stderr, "drop schema %s: %v\n", schema, err)
		}
	}, nil
}

// benchSchema creates schema (if missing) and returns a URL whose
// connections use it.
func benchSchema(ctx context.Context, base, schema string) (string, error) {
	if err := benchExec(ctx, base, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func benchExec(ctx context.Context, dbURL, sql string) error {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// startNodes starts the target's trail serve processes one after another.
func startNodes(ctx context.Context, self string, t benchTarget) ([]*benchServer, error) {
	var srvs []*benchServer
	for i := 0; i < t.nodes; i++ {
		s, err := startBenchServer(ctx, self, t.dir, t.url)
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
func peakRSS(srvs []*benchServer) float64 {
	var m float64
	for _, s := range srvs {
		m = max(m, s.peakRSS())
	}
	return m
}

// benchServer is a `trail serve` child process.
type benchServer struct {
	cmd *exec.Cmd
	url string
}

func startBenchServer(ctx context.Context, self, dataDir, dbURL string, args ...string) (*benchServer, error) {
	cmd := exec.CommandContext(ctx, self, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir, "--rate-limit", "0", "--log-level", "warn"}, args...)...)
	if dbURL != "" {
		cmd.Args = append(cmd.Args, "--database-url", dbURL)
	}
	cmd.Env = append(os.Environ(), "TRAIL_ADMIN_KEY="+benchKey)
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
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`msg="trail serving" url=(http://[0-9.:]+)`)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case u := <-found:
		return &benchServer{cmd: cmd, url: u}, nil
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		return nil, errors.New("server did not start")
	}
}

// peakRSS returns the child's peak resident set size in MiB.
func (s *benchServer) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseFloat(string(m[1]), 64)
	return kb / 1024
}

func (s *benchServer) stop() {
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

var benchHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}

func benchDo(method, url string, body []byte, hdr ...string) (int, []byte, error) {
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+benchKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := benchHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// latencies collects request durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) { l.mu.Lock(); l.d = append(l.d, d); l.mu.Unlock() }

func (l *latencies) pct(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	i := int(float64(len(l.d)-1) * p)
	return l.d[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// benchEvent is one realistic event of the catalogue.
func benchEvent(rng *rand.Rand, catalog []demo.CatalogEntry, at time.Time) *trail.EventInput {
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

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t:"))
}

// startBenchOrgs starts the nodes of a fresh target and creates the
// organizations org_<prefix>00 … of the scenario. stop stops the nodes and
// removes the target.
func startBenchOrgs(ctx context.Context, self string, c benchConfig, driver string, nodes int, prefix string, orgs int) (benchTarget, []*benchServer, func(), error) {
	target, cleanup, err := newBenchTarget(ctx, c, driver, nodes)
	if err != nil {
		return target, nil, nil, err
	}
	srvs, err := startNodes(ctx, self, target)
	if err != nil {
		cleanup()
		return target, nil, nil, err
	}
	stop := func() {
		for _, s := range srvs {
			s.stop()
		}
		cleanup()
	}
	for i := 0; i < orgs; i++ {
		body, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("org_%s%02d", prefix, i), "name": prefix})
		if code, b, err := benchDo("POST", srvs[0].url+"/organizations", body); err != nil || code != 201 {
			stop()
			return target, nil, nil, fmt.Errorf("create organization: %d %s %v", code, b, err)
		}
	}
	return target, srvs, stop, nil
}

func (m *Main) benchIngest(ctx context.Context, self string, c benchConfig, driver string, nodes int, batch bool) error {
	const orgs = 16
	target, srvs, stop, err := startBenchOrgs(ctx, self, c, driver, nodes, "bench", orgs)
	if err != nil {
		return err
	}
	defer stop()
	catalog, _ := demo.Catalog()
	clients, name := c.clients, fmt.Sprintf("single events, %d clients", c.clients)
	if batch {
		clients, name = c.batchConc, fmt.Sprintf("batches of %d, %d clients", c.batchSize, c.batchConc)
	}
	name += ", " + target.label()
	// A pool of encoded events, made before the clock starts.
	prng := rand.New(rand.NewPCG(1, 2))
	pool := make([][]byte, 5000)
	for i := range pool {
		pool[i], _ = json.Marshal(benchEvent(prng, catalog, time.Now().UTC().Add(-time.Duration(i)*time.Millisecond)))
	}
	var lat latencies
	var events, failures atomic.Int64
	deadline := time.Now().Add(c.duration)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var buf bytes.Buffer
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				org := fmt.Sprintf("org_bench%02d", rng.IntN(orgs))
				// Bodies are spliced from pre-encoded events, so that the
				// load generator spends little of the two cores; a unique
				// idempotency key makes each copy a distinct event.
				buf.Reset()
				n := 1
				if batch {
					n = c.batchSize
					fmt.Fprintf(&buf, `{"organization_id":%q,"events":[`, org)
					for j := 0; j < n; j++ {
						if j > 0 {
							buf.WriteByte(',')
						}
						fmt.Fprintf(&buf, `{"idempotency_key":"w%d-%d-%d",`, w, i, j)
						buf.Write(pool[rng.IntN(len(pool))][1:])
					}
					buf.WriteString(`]}`)
				} else {
					fmt.Fprintf(&buf, `{"organization_id":%q,"event":`, org)
					buf.Write(pool[rng.IntN(len(pool))])
					buf.WriteByte('}')
				}
				body := buf.Bytes()
				var hdr []string
				if !batch {
					hdr = []string{"Idempotency-Key", fmt.Sprintf("w%d-%d", w, i)}
				}
				path := "/audit_logs/events"
				if batch {
					path += "/batch"
				}
				t0 := time.Now()
				code, b, err := benchDo("POST", srvs[w%len(srvs)].url+path, body, hdr...)
				lat.add(time.Since(t0))
				if err == nil && code == 200 && batch && bytes.Contains(b, []byte(`"error"`)) {
					code = 0
				}
				if err != nil || code != 200 {
					failures.Add(1)
					if failures.Load() < 3 {
						fmt.Fprintf(m.Stderr, "request failed: %d %.200s %v\n", code, b, err)
					}
					continue
				}
				events.Add(int64(n))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(m.Stdout, "ingest: %s\n  events/s %.0f   requests %d   failures %d\n  latency p50 %s   p95 %s   p99 %s\n  server peak RSS %.0f MiB\n\n",
		name, float64(events.Load())/elapsed.Seconds(), len(lat.d), failures.Load(), ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), peakRSS(srvs))
	return nil
}

// benchQueryOrg holds the pre-loaded events of the query and export
// scenarios.
const benchQueryOrg = "org_bench_query"

// preloadedServer starts a server on the database of the query and export
// scenarios, pre-loaded with c.queryEvents events spread over 90 days
// (kept in --data-dir or, on PostgreSQL, in schema trail_bench_query for
// the next run).
func (m *Main) preloadedServer(ctx context.Context, self string, c benchConfig, driver string, serverArgs ...string) (srv *benchServer, target benchTarget, base time.Time, span time.Duration, cleanup func(), err error) {
	cleanup = func() {}
	dir := c.dataDir
	if dir == "" && driver == "postgres" {
		// The schema is kept for the next run, and with it the
		// checkpoints signed with this directory's key: keep the key,
		// one directory for each server and database.
		sum := sha256.Sum256([]byte(c.databaseURL))
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("trail_bench_query-%x", sum[:6]))
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "trail-bench")
		if err != nil {
			return nil, target, base, span, cleanup, err
		}
		cleanup = func() { os.RemoveAll(d) }
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, target, base, span, cleanup, err
	}
	span = 90 * 24 * time.Hour
	base = time.Now().UTC().Add(-span).Truncate(time.Hour)
	target = benchTarget{driver: driver, nodes: 1, dir: dir}
	sf := storageFlags{dataDir: dir}
	if driver == "postgres" {
		u, err := benchSchema(ctx, c.databaseURL, "trail_bench_query")
		if err != nil {
			return nil, target, base, span, cleanup, err
		}
		target.url, sf.databaseURL = u, u
	}
	if err := m.preload(ctx, sf, benchQueryOrg, c.queryEvents, base, span); err != nil {
		return nil, target, base, span, cleanup, err
	}
	if driver == "postgres" {
		// A database in steady state has its statistics and visibility
		// map up to date (autovacuum's work); a freshly loaded one not yet.
		if err := benchExec(ctx, target.url, `VACUUM (ANALYZE) events, event_targets, event_counts`); err != nil {
			return nil, target, base, span, cleanup, fmt.Errorf("vacuum: %w", err)
		}
	}
	srv, err = startBenchServer(ctx, self, dir, target.url, serverArgs...)
	if err != nil {
		return nil, target, base, span, cleanup, err
	}
	rm := cleanup
	cleanup = func() { srv.stop(); rm() }
	return srv, target, base, span, cleanup, nil
}

// benchFsck times trail fsck of the query scenario's organization, while
// its server serves (idle): the quick check and --thorough.
func (m *Main) benchFsck(ctx context.Context, self string, c benchConfig, driver string) error {
	_, target, _, _, cleanup, err := m.preloadedServer(ctx, self, c, driver)
	defer cleanup()
	if err != nil {
		return err
	}
	for _, thorough := range []bool{false, true} {
		args := []string{"fsck", "--data-dir", target.dir, "--org", benchQueryOrg}
		if target.url != "" {
			args = append(args, "--database-url", target.url)
		}
		mode := "quick"
		if thorough {
			args, mode = append(args, "--thorough"), "thorough"
		}
		start := time.Now()
		out, err := exec.CommandContext(ctx, self, args...).CombinedOutput()
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("fsck: %v\n%s", err, out)
		}
		fmt.Fprintf(m.Stdout, "fsck %-8s %-9s %d events: %s (%.0f events/s)\n  %s", driver, mode, c.queryEvents, took.Round(time.Millisecond),
			float64(c.queryEvents)/took.Seconds(), out)
	}
	return nil
}

func (m *Main) benchQuery(ctx context.Context, self string, c benchConfig, driver string) error {
	const org = benchQueryOrg
	srv, target, base, span, cleanup, err := m.preloadedServer(ctx, self, c, driver)
	defer cleanup()
	if err != nil {
		return err
	}
	catalog, _ := demo.Catalog()
	rng := rand.New(rand.NewPCG(9, 9))
	filters := []struct {
		name string
		q    func() string
	}{
		{"action", func() string { return "actions=" + catalog[rng.IntN(len(catalog))].Action }},
		{"action prefix", func() string {
			a := catalog[rng.IntN(len(catalog))].Action
			return "actions=" + a[:strings.IndexByte(a, '.')] + ".*"
		}},
		{"actor", func() string { return fmt.Sprintf("actor_ids=user_%04d", rng.IntN(2000)) }},
		{"target", func() string {
			e := catalog[rng.IntN(len(catalog))]
			return fmt.Sprintf("target_ids=%s_%05d", e.TargetTypes[0], rng.IntN(50000))
		}},
		{"date range (1 day)", func() string {
			s := base.Add(time.Duration(rng.Int64N(int64(span - 24*time.Hour))))
			return "range_start=" + s.Format(time.RFC3339) + "&range_end=" + s.Add(24*time.Hour).Format(time.RFC3339)
		}},
		{"date range (calendar day)", func() string {
			s := base.Add(time.Duration(rng.Int64N(int64(span - 24*time.Hour)))).Truncate(24 * time.Hour)
			return "range_start=" + s.Format(time.RFC3339) + "&range_end=" + s.Add(24*time.Hour).Format(time.RFC3339)
		}},
		{"date range (7 days)", func() string {
			s := base.Add(time.Duration(rng.Int64N(int64(span - 7*24*time.Hour))))
			return "range_start=" + s.Format(time.RFC3339) + "&range_end=" + s.Add(7*24*time.Hour).Format(time.RFC3339)
		}},
		{"q (one word)", func() string { return fmt.Sprintf("q=INC-%d", rng.IntN(100000)) }},
		{"q (two words)", func() string {
			return "q=" + []string{"sev1", "sev2", "sev3"}[rng.IntN(3)] + "+" + catalog[rng.IntN(len(catalog))].TargetTypes[0]
		}},
	}
	fmt.Fprintf(m.Stdout, "query (%s): first page (limit 50), %d events in one organization, %d queries per filter\n", target.label(), c.queryEvents, c.queries)
	// Warm-up: untimed queries of every filter, so that the figures are
	// of a server whose page cache holds the indexes, as in production.
	for _, f := range filters {
		for i := 0; i < c.warmup; i++ {
			if _, _, err := benchDo("GET", srv.url+"/audit_logs/events?organization_id="+org+"&limit=50&"+f.q(), nil); err != nil {
				return err
			}
		}
	}
	for _, f := range filters {
		var lat latencies
		var empty int
		for i := 0; i < c.queries; i++ {
			url := srv.url + "/audit_logs/events?organization_id=" + org + "&limit=50&" + f.q()
			t0 := time.Now()
			code, b, err := benchDo("GET", url, nil)
			lat.add(time.Since(t0))
			if err != nil || code != 200 {
				return fmt.Errorf("query %s: %d %.200s %v", url, code, b, err)
			}
			if bytes.HasPrefix(b, []byte(`{"object":"list","data":[]`)) {
				empty++
			}
		}
		fmt.Fprintf(m.Stdout, "  %-26s p50 %-10s p95 %-10s p99 %-10s (%d of %d pages empty)\n", f.name, ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), empty, c.queries)
	}
	if err := benchProofs(srv.url, org, c.queries, rng, m.Stdout); err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "  server peak RSS %.0f MiB\n\n", srv.peakRSS())
	return nil
}

// benchProofs measures proofs in the tree of the organization's latest
// checkpoint: inclusion of a random event, consistency from a random
// size, and a random event with its proof.
func benchProofs(base, org string, n int, rng *rand.Rand, out io.Writer) error {
	code, b, err := benchDo("GET", base+"/audit_logs/checkpoint?organization_id="+org, nil)
	if err != nil || code != 200 {
		return fmt.Errorf("checkpoint: %d %s %v", code, b, err)
	}
	lines := strings.Split(string(b), "\n")
	size, _ := strconv.ParseInt(lines[1], 10, 64)
	if size < 2 {
		return fmt.Errorf("checkpoint of %d events", size)
	}
	// Event ids at random indexes, for GET /audit_logs/events/{id}.
	var ids []string
	for len(ids) < n {
		after := rng.Int64N(size - 1)
		code, b, err := benchDo("GET", fmt.Sprintf("%s/audit_logs/events?organization_id=%s&order=asc&limit=1&after=%s", base, org, httpapi.EncodeEventCursor(after)), nil)
		if err != nil || code != 200 {
			return fmt.Errorf("list: %d %.200s %v", code, b, err)
		}
		var page struct {
			Data []struct{ ID string } `json:"data"`
		}
		json.Unmarshal(b, &page)
		if len(page.Data) == 1 {
			ids = append(ids, page.Data[0].ID)
		}
	}
	for _, p := range []struct {
		name string
		path func(i int) string
	}{
		{"inclusion proof", func(int) string {
			return fmt.Sprintf("/audit_logs/proofs/inclusion?organization_id=%s&index=%d&tree_size=%d", org, rng.Int64N(size), size)
		}},
		{"consistency proof", func(int) string {
			return fmt.Sprintf("/audit_logs/proofs/consistency?organization_id=%s&first=%d&second=%d", org, 1+rng.Int64N(size-1), size)
		}},
		{"event with its proof", func(i int) string { return "/audit_logs/events/" + ids[i] }},
	} {
		var lat latencies
		for i := 0; i < n; i++ {
			t0 := time.Now()
			code, b, err := benchDo("GET", base+p.path(i), nil)
			lat.add(time.Since(t0))
			if err != nil || code != 200 {
				return fmt.Errorf("%s: %d %.200s %v", p.name, code, b, err)
			}
		}
		fmt.Fprintf(out, "  %-26s p50 %-10s p95 %-10s p99 %-10s (tree of %d events)\n", p.name, ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), size)
	}
	return nil
}

// benchLag sends events at a steady rate and measures, for each, the time
// from its acceptance (the response) to the first signed checkpoint that
// covers it, as seen by a client polling the checkpoint every 10 ms.
func (m *Main) benchLag(ctx context.Context, self string, c benchConfig, driver string, nodes int) error {
	const orgs, poll = 4, 10 * time.Millisecond
	target, srvs, stop, err := startBenchOrgs(ctx, self, c, driver, nodes, "lag", orgs)
	if err != nil {
		return err
	}
	defer stop()
	batch := c.batchSize
	catalog, _ := demo.Catalog()
	prng := rand.New(rand.NewPCG(5, 6))
	pool := make([][]byte, 2000)
	for i := range pool {
		pool[i], _ = json.Marshal(benchEvent(prng, catalog, time.Now().UTC()))
	}
	type accepted struct {
		last int64 // highest index of the request
		at   time.Time
		n    int
	}
	var mu sync.Mutex
	acks := make([][]accepted, orgs)
	// seen[o] records when the poller first saw each checkpoint size.
	type sighting struct {
		size int64
		at   time.Time
	}
	seen := make([][]sighting, orgs)
	var pollLat latencies
	stopPoll := make(chan struct{})
	var pollWG sync.WaitGroup
	for o := 0; o < orgs; o++ {
		pollWG.Add(1)
		go func(o int) {
			defer pollWG.Done()
			t := time.NewTicker(poll)
			defer t.Stop()
			last := int64(-1)
			for {
				select {
				case <-stopPoll:
					return
				case <-t.C:
				}
				t0 := time.Now()
				code, b, err := benchDo("GET", fmt.Sprintf("%s/audit_logs/checkpoint?organization_id=org_lag%02d", srvs[o%len(srvs)].url, o), nil)
				now := time.Now()
				pollLat.add(now.Sub(t0))
				if err != nil || code != 200 {
					continue
				}
				lines := strings.Split(string(b), "\n")
				size, _ := strconv.ParseInt(lines[1], 10, 64)
				if size > last {
					last = size
					mu.Lock()
					seen[o] = append(seen[o], sighting{size, now})
					mu.Unlock()
				}
			}
		}(o)
	}
	// The load: rate/batch requests a second, spread over orgs × 4
	// clients, each on its own ticker.
	clients := orgs * 4
	interval := time.Duration(float64(time.Second) * float64(batch*clients) / float64(c.lagRate))
	deadline := time.Now().Add(c.duration)
	var wg sync.WaitGroup
	var failures atomic.Int64
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			o := w % orgs
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			t := time.NewTicker(interval)
			defer t.Stop()
			var buf bytes.Buffer
			for i := 0; time.Now().Before(deadline); i++ {
				<-t.C
				buf.Reset()
				fmt.Fprintf(&buf, `{"organization_id":"org_lag%02d","events":[`, o)
				for j := 0; j < batch; j++ {
					if j > 0 {
						buf.WriteByte(',')
					}
					fmt.Fprintf(&buf, `{"idempotency_key":"l%d-%d-%d",`, w, i, j)
					buf.Write(pool[rng.IntN(len(pool))][1:])
				}
				buf.WriteString(`]}`)
				code, b, err := benchDo("POST", srvs[w%len(srvs)].url+"/audit_logs/events/batch", buf.Bytes())
				at := time.Now()
				if err != nil || code != 200 {
					failures.Add(1)
					continue
				}
				var res struct {
					Data []struct {
						Index *int64 `json:"index"`
					} `json:"data"`
				}
				json.Unmarshal(b, &res)
				var hi int64 = -1
				n := 0
				for _, d := range res.Data {
					if d.Index != nil {
						hi = max(hi, *d.Index)
						n++
					}
				}
				mu.Lock()
				acks[o] = append(acks[o], accepted{hi, at, n})
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	// Let the last events be integrated, then stop polling.
	time.Sleep(3 * time.Second)
	close(stopPoll)
	pollWG.Wait()
	var lat latencies
	var events, missing int
	for o := 0; o < orgs; o++ {
		for _, a := range acks[o] {
			events += a.n
			i := sort.Search(len(seen[o]), func(i int) bool { return seen[o][i].size > a.last })
			if i == len(seen[o]) {
				missing += a.n
				continue
			}
			d := max(seen[o][i].at.Sub(a.at), 0)
			for k := 0; k < a.n; k++ {
				lat.add(d)
			}
		}
	}
	fmt.Fprintf(m.Stdout, "lag: acceptance to a signed checkpoint, %d events/s asked in batches of %d, %s\n  events/s %.0f   failures %d   not in a checkpoint after 3 s: %d\n  lag p50 %s   p95 %s   p99 %s   max %s (seen by a client polling every %s; a poll took p50 %s, p99 %s)\n  server peak RSS %.0f MiB\n\n",
		c.lagRate, batch, target.label(), float64(events)/elapsed.Seconds(), failures.Load(), missing, ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), ms(lat.pct(1)), poll, ms(pollLat.pct(.5)), ms(pollLat.pct(.99)), peakRSS(srvs))
	return nil
}

// preload appends events directly through the driver until the
// organization holds n events.
func (m *Main) preload(ctx context.Context, sf storageFlags, org string, n int, base time.Time, span time.Duration) error {
	db, err := sf.openDB(ctx, m.logger())
	if err != nil {
		return err
	}
	defer db.Close()
	orgs, events := db.Organizations, db.Events
	if _, err := orgs.FindOrganizationByID(ctx, org); trail.ErrorCode(err) == trail.ENOTFOUND {
		if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: org, Name: "bench"}); err != nil {
			return err
		}
	}
	page, err := events.FindEvents(ctx, trail.EventFilter{OrganizationID: org, Limit: 1})
	if err != nil {
		return err
	}
	have := int(page.Events[0].Index) // index 0 is organization.created
	if have >= n {
		fmt.Fprintf(m.Stdout, "query: reusing %d pre-loaded events in %s\n", have, db.Name)
		return m.integrateAll(ctx, sf, db)
	}
	catalog, _ := demo.Catalog()
	rng := rand.New(rand.NewPCG(uint64(have), 3))
	step := span / time.Duration(n)
	start := time.Now()
	const chunk = 10000
	for i := have; i < n; i += chunk {
		evs := make([]*trail.EventInput, min(chunk, n-i))
		for j := range evs {
			evs[j] = benchEvent(rng, catalog, base.Add(step*time.Duration(i+j)))
		}
		if _, err := events.AppendEvents(ctx, org, evs); err != nil {
			return err
		}
		if (i/chunk)%50 == 0 {
			fmt.Fprintf(m.Stderr, "\rpre-loading: %d of %d events (%.0f/s)", i+len(evs), n, float64(i+len(evs)-have)/time.Since(start).Seconds())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Fprintf(m.Stderr, "\rpre-loaded %d events in %s (%.0f events/s through the driver)\n", n-have, time.Since(start).Round(time.Second), float64(n-have)/time.Since(start).Seconds())
	return m.integrateAll(ctx, sf, db)
}

// integrateAll brings every tree up to its log before the timed queries,
// as the server's integrator would, and says how long it took.
func (m *Main) integrateAll(ctx context.Context, sf storageFlags, db *store) error {
	id, err := loadLogIdentity(ctx, &logFlags{}, sf.dataDir, "127.0.0.1:0", db.Logs)
	if err != nil {
		return err
	}
	ig := &tlog.Integrator{Store: db.Logs, Signer: id.Signer, Timestamper: id.Timestamper, Origin: id.Origin}
	start := time.Now()
	var leaves int64
	ig.OnCheckpoint = func(_ string, from, to int64) { leaves += to - from }
	n, err := ig.Integrate(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(m.Stdout, "integrated %d events into their trees in %s (%d checkpoints, %.0f events/s)\n", leaves, time.Since(start).Round(time.Millisecond), n, float64(leaves)/time.Since(start).Seconds())
	}
	return nil
}

// benchExport exports every pre-loaded event through the API, as CSV,
// gzipped CSV and NDJSON with proofs: the time from creating the export
// to its being ready (the server streams the database to the file), the
// download, and the server's peak RSS.
func (m *Main) benchExport(ctx context.Context, self string, c benchConfig, driver string) error {
	// Files are removed a minute after they are ready: the next export's
	// file takes their place on the disk (an NDJSON file of 10 M events is
	// 14 GB).
	srv, target, base, _, cleanup, err := m.preloadedServer(ctx, self, c, driver, "--export-ttl", "1m")
	defer cleanup()
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "export (%s): every event of one organization (%d pre-loaded)\n", target.label(), c.queryEvents)
	for _, f := range []struct {
		name   string
		format string
		gzip   bool
		flag   string
	}{{"CSV", "csv", false, "csv"}, {"CSV, gzip", "csv", true, "csv.gz"}, {"NDJSON with proofs", "ndjson", false, "ndjson"}} {
		if !slices.Contains(strings.Split(c.exportFormats, ","), f.flag) {
			continue
		}
		body, _ := json.Marshal(map[string]any{"organization_id": benchQueryOrg, "format": f.format, "gzip": f.gzip,
			"range_start": base.Add(-24 * time.Hour).Format(time.RFC3339), "range_end": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		start := time.Now()
		code, b, err := benchDo("POST", srv.url+"/audit_logs/exports", body)
		if err != nil || code != 201 {
			return fmt.Errorf("create export: %d %.300s %v", code, b, err)
		}
		var ex httpapi.ExportResponse
		if err := json.Unmarshal(b, &ex); err != nil {
			return err
		}
		for ex.State == "pending" {
			time.Sleep(200 * time.Millisecond)
			code, b, err := benchDo("GET", srv.url+"/audit_logs/exports/"+ex.ID, nil)
			if err != nil || code != 200 {
				return fmt.Errorf("get export: %d %.300s %v", code, b, err)
			}
			if err := json.Unmarshal(b, &ex); err != nil {
				return err
			}
		}
		took := time.Since(start)
		if ex.State != "ready" {
			return fmt.Errorf("export %s: %s %s", ex.ID, ex.State, ex.Error)
		}
		dl := time.Now()
		resp, err := benchHTTP.Get(*ex.URL)
		if err != nil {
			return err
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != ex.Bytes {
			return fmt.Errorf("download: %d of %d bytes, %v", n, ex.Bytes, err)
		}
		dlTook := time.Since(dl)
		fmt.Fprintf(m.Stdout, "  %-20s %d rows in %s: %.0f rows/s, %.1f MB (%.0f B/row); download %.0f MB/s\n", f.name, ex.Rows, took.Round(10*time.Millisecond),
			float64(ex.Rows)/took.Seconds(), float64(ex.Bytes)/1e6, float64(ex.Bytes)/float64(max(ex.Rows, 1)), float64(n)/1e6/dlTook.Seconds())
	}
	fmt.Fprintf(m.Stdout, "  server peak RSS %.0f MiB\n\n", srv.peakRSS())
	return nil
}
