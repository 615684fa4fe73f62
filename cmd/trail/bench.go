package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/trail-audit/trail/bench"
	"github.com/trail-audit/trail/tlog"
)

func (m *Main) runBench(ctx context.Context, args []string) error {
	fs := m.newFlagSet("bench", "Start `trail serve` on a temporary directory and measure it over HTTP.")
	c := bench.DefaultConfig()
	var scenarios, drivers, nodes, formats string
	fs.StringVar(&scenarios, "scenarios", strings.Join(c.Scenarios, ","), "comma list of "+strings.Join(bench.Scenarios, ", "))
	fs.IntVar(&c.StreamEvents, "stream-events", c.StreamEvents, "events pre-loaded for the throughput of the streams scenario")
	fs.IntVar(&c.ImportEvents, "import-events", c.ImportEvents, "events in the NDJSON file of the import scenario (trail import, beside the batch scenario's API figure)")
	fs.IntVar(&c.StreamRate, "stream-rate", c.StreamRate, "events a second of the streams scenario's latency measurement")
	fs.IntVar(&c.LagRate, "lag-rate", c.LagRate, "events a second of the lag scenario, which measures the time from acceptance to being in a signed checkpoint")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long each ingest scenario runs")
	fs.IntVar(&c.Clients, "clients", c.Clients, "concurrent clients of the single-event scenario")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "events per batch request")
	fs.IntVar(&c.BatchClients, "batch-clients", c.BatchClients, "concurrent clients of the batch scenario")
	fs.IntVar(&c.QueryEvents, "query-events", c.QueryEvents, "events pre-loaded for the query and export scenarios")
	fs.IntVar(&c.Queries, "queries", c.Queries, "queries per filter in the query scenario")
	fs.IntVar(&c.Warmup, "warmup", c.Warmup, "untimed queries per filter before the timed ones, so that the database's working set is cached (raise it when another database on the machine ran just before)")
	fs.StringVar(&c.DataDir, "data-dir", "", "keep the query scenario's SQLite database here and reuse it (default: a temporary directory)")
	fs.StringVar(&drivers, "drivers", "", "comma list of sqlite and postgres: each scenario runs on each, side by side (default sqlite, or sqlite,postgres with --database-url)")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL server (postgres://…) of the postgres driver, which has no default; ingest runs in a fresh schema, the query scenario keeps its events in schema trail_bench_query and its keys in $TMPDIR/trail_bench_query-<hash of the URL>")
	fs.StringVar(&formats, "export-formats", strings.Join(c.ExportFormats, ","), "comma list of csv, csv.gz and ndjson: the files of the export scenario")
	fs.StringVar(&nodes, "nodes", "1", "comma list of node counts for the postgres ingest scenarios (e.g. 1,2)")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	c.Scenarios, c.Drivers, c.ExportFormats = splitList(scenarios), splitList(drivers), splitList(formats)
	c.Nodes = nil
	for _, n := range splitList(nodes) {
		v, err := strconv.Atoi(n)
		if err != nil || v < 1 {
			return fmt.Errorf("--nodes %q: want a comma list of counts ≥ 1", nodes)
		}
		c.Nodes = append(c.Nodes, v)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c.Executable, c.Version, c.Log, c.Open = self, version(), m.Stderr, m.openBenchDB
	err = bench.Run(ctx, c, m.Stdout)
	if errors.Is(err, bench.ErrNoDatabaseURL) {
		return fmt.Errorf("--drivers postgres: %w: give --database-url postgres://… or set TRAIL_DATABASE_URL", err)
	}
	return err
}

// openBenchDB opens the database of bench's pre-loaded scenarios, as serve
// would, with an integrator that signs with the data directory's key.
func (m *Main) openBenchDB(ctx context.Context, dataDir, databaseURL string) (*bench.DB, error) {
	sf := storageFlags{dataDir: dataDir, databaseURL: databaseURL}
	db, err := sf.openDB(ctx, m.logger())
	if err != nil {
		return nil, err
	}
	id, err := loadLogIdentity(ctx, &logFlags{}, dataDir, "127.0.0.1:0", db.Logs)
	if err != nil {
		db.Close()
		return nil, err
	}
	integrate := func(ctx context.Context) (int, int64, error) {
		var leaves int64
		ig := &tlog.Integrator{Store: db.Logs, Signer: id.Signer, Timestamper: id.Timestamper, Origin: id.Origin,
			OnCheckpoint: func(_ string, from, to int64) { leaves += to - from }}
		n, err := ig.Integrate(ctx)
		return n, leaves, err
	}
	return &bench.DB{Name: db.Name, Organizations: db.Organizations, Events: db.Events, Integrate: integrate, Close: db.Close}, nil
}

// splitList splits a comma list, dropping blanks around and between items.
func splitList(s string) []string {
	var items []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
