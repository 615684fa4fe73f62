package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// The defaults of [DefaultConfig], the flags' defaults of trail bench.
const (
	DefaultDuration     = 15 * time.Second // how long each ingest scenario runs
	DefaultClients      = 64               // concurrent clients of the single-event scenario
	DefaultBatchSize    = 500              // events per batch request
	DefaultBatchClients = 4                // concurrent clients of the batch scenario
	DefaultLagRate      = 10000            // events a second of the lag scenario
	DefaultQueryEvents  = 10_000_000       // events pre-loaded for the query scenarios
	DefaultQueries      = 300              // timed queries per filter
	DefaultWarmup       = 60               // untimed queries per filter
	DefaultStreamEvents = 200_000          // events pre-loaded for the streams throughput
	DefaultStreamRate   = 1000             // events a second of the streams latency
	DefaultImportEvents = 200_000          // events of the import scenario's file
)

// Scenarios are the scenarios Run knows, in the order of trail bench's help.
var Scenarios = []string{"single", "batch", "import", "lag", "query", "export", "streams", "ui", "fsck"}

// ErrNoDatabaseURL is returned by [Config.Validate] when a scenario is to
// run on PostgreSQL and no server is named: there is no default server.
var ErrNoDatabaseURL = errors.New("the postgres driver needs a PostgreSQL server URL (postgres://…), and none was given")

// Config says which scenarios Run measures, on which drivers, and how.
type Config struct {
	// Executable is the trail binary that the scenarios start as child
	// processes (trail serve, trail fsck): usually the running one.
	Executable string
	// Version names the build in the report's first line.
	Version string
	// Open opens the database of the query, export, ui and fsck scenarios
	// for their pre-load, which goes through the driver rather than the
	// API. The caller picks the driver from databaseURL ("" is SQLite in
	// dataDir), as trail serve does, and runs the migrations.
	Open func(ctx context.Context, dataDir, databaseURL string) (*DB, error)
	// Log receives the pre-load's progress and the first failed requests;
	// nil discards them.
	Log io.Writer

	// Scenarios to run, each of [Scenarios], in order.
	Scenarios []string
	// Drivers each scenario runs on, side by side: "sqlite", "postgres".
	// Empty is sqlite alone, or sqlite and postgres when DatabaseURL is set.
	Drivers []string
	// Nodes are the node counts of the PostgreSQL ingest scenarios
	// (single, batch, lag): trail serve processes sharing one database.
	Nodes []int
	// DatabaseURL is the PostgreSQL server of the postgres driver. Ingest
	// runs in a fresh schema, dropped afterwards; the query scenarios keep
	// their events in schema trail_bench_query for the next run.
	DatabaseURL string
	// DataDir keeps the query scenarios' SQLite database for the next run
	// ("" is a temporary directory).
	DataDir string

	Duration     time.Duration // how long each ingest scenario runs
	Clients      int           // concurrent clients of the single-event scenario
	BatchSize    int           // events per batch request
	BatchClients int           // concurrent clients of the batch scenario
	LagRate      int           // events a second of the lag scenario
	QueryEvents  int           // events pre-loaded for query, export, ui and fsck
	Queries      int           // timed queries per filter of the query scenario
	Warmup       int           // untimed queries per filter before the timed ones
	// ExportFormats are the files of the export scenario: csv, csv.gz, ndjson.
	ExportFormats []string
	StreamEvents  int // events pre-loaded for the streams throughput
	ImportEvents  int // events of the import scenario's NDJSON file
	StreamRate    int // events a second of the streams latency
}

// DB is a database opened by [Config.Open]: the services the pre-load
// uses, whichever the driver.
type DB struct {
	// Name says which database this is, for messages.
	Name          string
	Organizations trail.OrganizationService
	Events        trail.EventService
	// Integrate signs every appended event into its organization's tree,
	// as trail serve's integrator does, and returns how many checkpoints
	// it stored and how many leaves they added.
	Integrate func(ctx context.Context) (checkpoints int, leaves int64, err error)
	// Close closes the database.
	Close func() error
}

// DefaultConfig returns the configuration of a plain trail bench: the
// single, batch, lag and query scenarios on SQLite. Executable, Version
// and Open are the caller's.
func DefaultConfig() Config {
	return Config{
		Scenarios: []string{"single", "batch", "lag", "query"},
		Nodes:     []int{1},
		Duration:  DefaultDuration, Clients: DefaultClients, BatchSize: DefaultBatchSize, BatchClients: DefaultBatchClients,
		LagRate: DefaultLagRate, QueryEvents: DefaultQueryEvents, Queries: DefaultQueries, Warmup: DefaultWarmup,
		ExportFormats: []string{"csv", "csv.gz", "ndjson"},
		StreamEvents:  DefaultStreamEvents, StreamRate: DefaultStreamRate, ImportEvents: DefaultImportEvents,
	}
}

// drivers returns the drivers to run on, the default filled in.
func (c Config) drivers() []string {
	switch {
	case len(c.Drivers) > 0:
		return c.Drivers
	case c.DatabaseURL != "":
		return []string{"sqlite", "postgres"}
	default:
		return []string{"sqlite"}
	}
}

// Validate reports the first thing in c that Run cannot do.
func (c Config) Validate() error {
	if c.Executable == "" {
		return errors.New("no trail executable to start")
	}
	for _, sc := range c.Scenarios {
		if !slices.Contains(Scenarios, sc) {
			return fmt.Errorf("unknown scenario %q", sc)
		}
		if preloaded(sc) && c.Open == nil {
			return fmt.Errorf("scenario %s pre-loads a database, and no Open function is set", sc)
		}
	}
	for _, n := range c.Nodes {
		if n < 1 {
			return fmt.Errorf("node count %d: want at least 1", n)
		}
	}
	for _, d := range c.drivers() {
		switch d {
		case "sqlite":
		case "postgres":
			if c.DatabaseURL == "" {
				return ErrNoDatabaseURL
			}
			if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
				return fmt.Errorf("database URL of the postgres driver: want postgres://…, not %s", strings.SplitN(c.DatabaseURL, ":", 2)[0]+"://…")
			}
		default:
			return fmt.Errorf("unknown driver %q", d)
		}
	}
	return nil
}

// preloaded reports whether a scenario runs on the pre-loaded database.
func preloaded(scenario string) bool {
	return scenario == "query" || scenario == "export" || scenario == "ui" || scenario == "fsck"
}

// step is one scenario on one driver with a number of nodes.
type step struct {
	scenario, driver string
	nodes            int
}

// plan lists the runs of c in order: each scenario on each driver, and
// the PostgreSQL ingest scenarios once for each node count.
func (c Config) plan() []step {
	var steps []step
	for _, sc := range c.Scenarios {
		for _, driver := range c.drivers() {
			counts := []int{1}
			if driver == "postgres" && (sc == "single" || sc == "batch" || sc == "lag") && len(c.Nodes) > 0 {
				counts = c.Nodes
			}
			for _, n := range counts {
				steps = append(steps, step{sc, driver, n})
			}
		}
	}
	return steps
}

// runner runs the scenarios of one Run.
type runner struct {
	c    Config
	out  io.Writer // the report
	log  io.Writer // progress and failures
	http *http.Client
}

// Run runs the scenarios of c in turn and writes their figures to out.
// Each scenario starts trail serve (c.Executable) on a fresh or pre-loaded
// database and measures it over HTTP from this process.
func Run(ctx context.Context, c Config, out io.Writer) error {
	if err := c.Validate(); err != nil {
		return err
	}
	r := &runner{c: c, out: out, log: c.Log,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}}
	if r.log == nil {
		r.log = io.Discard
	}
	defer r.http.CloseIdleConnections()
	fmt.Fprintf(out, "trail bench %s, %d CPUs, %s\n\n", c.Version, numCPU(), time.Now().UTC().Format(time.RFC3339))
	for _, s := range c.plan() {
		if err := r.run(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// run runs one step.
func (r *runner) run(ctx context.Context, s step) error {
	switch s.scenario {
	case "single":
		return r.ingest(ctx, s.driver, s.nodes, false)
	case "batch":
		return r.ingest(ctx, s.driver, s.nodes, true)
	case "import":
		return r.importFile(ctx, s.driver)
	case "lag":
		return r.lag(ctx, s.driver, s.nodes)
	case "query":
		return r.query(ctx, s.driver)
	case "export":
		return r.export(ctx, s.driver)
	case "streams":
		return r.streams(ctx, s.driver)
	case "ui":
		return r.ui(ctx, s.driver)
	case "fsck":
		return r.fsck(ctx, s.driver)
	}
	return fmt.Errorf("unknown scenario %q", s.scenario)
}

// numCPU counts the machine's processors, as the report's first line
// gives them.
func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return max(1, strings.Count(string(b), "processor\t:"))
}
