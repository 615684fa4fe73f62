package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/delivery"
	"github.com/trail-audit/trail/export"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/internal/pgtest"
	"github.com/trail-audit/trail/internal/secretbox"
	"github.com/trail-audit/trail/jsonschema"
	"github.com/trail-audit/trail/postgres"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/tlog"
	"github.com/trail-audit/trail/ui"
	"golang.org/x/mod/sumdb/note"
)

// adminSecret is the bootstrap key of every test server.
const adminSecret = "sk_test_admin_0123456789abcdefghijklmnop"

// testServer is a real server on loopback over a SQLite file or a
// PostgreSQL schema of its own.
type testServer struct {
	*httpapi.Server
	Events  trail.EventService
	Orgs    trail.OrganizationService
	Keys    trail.APIKeyService
	Logs    trail.LogStore
	Exports trail.ExportService
	VKey    string // the checkpoints' verifier key
	// Clock moves the server's clock (export links) by its value.
	Clock *atomic.Int64
	// ExportWorker runs the server's exports.
	ExportWorker *export.Worker
	Streams      trail.StreamService
	// StreamWorker delivers the server's log streams; private
	// destinations and plain http are allowed.
	StreamWorker *delivery.Worker
	Portal       trail.PortalService
}

// serverFunc starts a test server on one driver.
type serverFunc func(t *testing.T, opts ...func(*httpapi.Server, *jsonschema.Validator)) *testServer

// forEachDriver runs test once on SQLite and once on PostgreSQL, as
// subtests named after the driver. The PostgreSQL run skips where no
// server can be reached, unless TRAIL_REQUIRE_POSTGRES=1.
func forEachDriver(t *testing.T, test func(t *testing.T, newTestServer serverFunc)) {
	for _, driver := range []string{"sqlite", "postgres", "citus"} {
		t.Run(driver, func(t *testing.T) {
			test(t, func(t *testing.T, opts ...func(*httpapi.Server, *jsonschema.Validator)) *testServer {
				return newServerOn(t, driver, opts...)
			})
		})
	}
}

// driverServices are a driver's services on a fresh database.
type driverServices struct {
	events      trail.EventService
	orgs        trail.OrganizationService
	schemas     trail.SchemaService
	keys        trail.APIKeyService
	idempotency trail.IdempotencyService
	onCommit    func(func(events, requests int, d time.Duration))
	logs        trail.LogStore
	exports     trail.ExportService
	streams     trail.StreamService
	portal      trail.PortalService
}

// openDriver opens a fresh database whose clock runs clock ahead of the
// real one (portal links expire by it).
func openDriver(t *testing.T, driver string, clock *atomic.Int64) driverServices {
	t.Helper()
	ctx := context.Background()
	switch driver {
	case "sqlite":
		db := sqlite.NewDB(filepath.Join(t.TempDir(), "trail.db"))
		db.Now = func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
		if err := db.Open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return driverServices{sqlite.NewEventService(db), service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations, service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Schemas,
			service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).APIKeys, service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Idempotency, func(f func(int, int, time.Duration)) { db.OnCommit = f }, sqlite.NewLogStore(db), service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Exports, service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Streams, service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Portal}
	case "postgres", "citus":
		url := pgtest.URL
		if driver == "citus" {
			url = pgtest.CitusURL // skips without TRAIL_TEST_CITUS_URL
		}
		db := postgres.NewDB(url(t))
		db.Now = func() time.Time { return time.Now().Add(time.Duration(clock.Load())) }
		if err := db.Open(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return driverServices{postgres.NewEventService(db), service.New(postgres.NewStore(db), postgres.NewExportService(db)).Organizations, service.New(postgres.NewStore(db), postgres.NewExportService(db)).Schemas,
			service.New(postgres.NewStore(db), postgres.NewExportService(db)).APIKeys, service.New(postgres.NewStore(db), postgres.NewExportService(db)).Idempotency, func(f func(int, int, time.Duration)) { db.OnCommit = f }, postgres.NewLogStore(db), service.New(postgres.NewStore(db), postgres.NewExportService(db)).Exports, service.New(postgres.NewStore(db), postgres.NewExportService(db)).Streams, service.New(postgres.NewStore(db), postgres.NewExportService(db)).Portal}
	}
	t.Fatalf("unknown driver %q", driver)
	return driverServices{}
}

func newServerOn(t *testing.T, driver string, opts ...func(*httpapi.Server, *jsonschema.Validator)) *testServer {
	t.Helper()
	ctx := context.Background()
	clock := &atomic.Int64{}
	d := openDriver(t, driver, clock)
	ts := &testServer{Events: d.events, Orgs: d.orgs, Keys: d.keys, Logs: d.logs, Exports: d.exports, Clock: clock, Portal: d.portal}
	schemas := d.schemas
	if err := ts.Keys.CreateAPIKey(ctx, &trail.APIKey{Name: "admin", Permissions: []trail.Permission{trail.PermAdmin}, Secret: adminSecret}); err != nil {
		t.Fatal(err)
	}
	v := jsonschema.NewValidator(schemas)
	s := httpapi.NewServer()
	s.Addr = "127.0.0.1:0"
	// The server's log is shown when the test fails (and only then).
	logs := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	s.Logger = slog.New(slog.NewTextHandler(logs, nil))
	s.Events, s.Organizations, s.Schemas, s.APIKeys = ts.Events, ts.Orgs, schemas, ts.Keys
	s.Validator = v
	s.Idempotency = d.idempotency
	s.CheckSchema = v.Check
	s.SchemaCreated = v.Forget
	s.RateLimit, s.OrgRateLimit = 0, 0
	skey, vkey, err := note.GenerateKey(rand.Reader, "trail.test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	ts.VKey = vkey
	s.Proofs = &tlog.Prover{Store: d.logs, Key: vkey}
	ig := &tlog.Integrator{Store: d.logs, Signer: signer, Origin: "trail.test", Interval: 20 * time.Millisecond}
	ig.Start(context.Background())
	t.Cleanup(ig.Stop)
	s.Exports = d.exports
	s.ExportURLKey = make([]byte, 32)
	rand.Read(s.ExportURLKey)
	s.Now = func() time.Time { return time.Now().Add(time.Duration(ts.Clock.Load())) }
	worker := &export.Worker{Exports: d.exports, Source: export.Source{Events: d.events, Logs: d.logs}, Logger: s.Logger, PollInterval: 20 * time.Millisecond}
	worker.Start(context.Background())
	t.Cleanup(worker.Stop)
	s.ExportCreated = worker.Wake
	ts.ExportWorker = worker
	var key [32]byte
	rand.Read(key[:])
	box, _ := secretbox.New(key[:])
	ts.Streams = d.streams
	sw := &delivery.Worker{Streams: d.streams, Events: d.events, Open: box.OpenStream, Logger: s.Logger, PollInterval: 50 * time.Millisecond,
		Client: delivery.NewClient(delivery.ClientOptions{AllowPrivate: true})}
	s.Streams, s.SealStream, s.OpenStream, s.TestStream = d.streams, box.SealStream, box.OpenStream, sw.Test
	s.AllowPlainHTTP = true
	s.Portal, s.UI = d.portal, ui.Dist
	s.CheckDestination = func(host string) error { return delivery.CheckHost(host, true) }
	s.StreamsChanged, s.EventsAppended = sw.Changed, sw.Wake
	ts.StreamWorker = sw
	s.Ready = func(ctx context.Context) error {
		_, err := ts.Orgs.FindOrganizationByID(ctx, trail.SystemOrganizationID)
		return err
	}
	for _, o := range opts {
		o(s, v)
	}
	if s.Metrics == nil {
		s.Metrics = httpapi.NewMetrics()
	}
	sw.Observer = s.Metrics
	sw.Start(context.Background())
	t.Cleanup(sw.Stop)
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	ts.Server = s
	d.onCommit(s.Metrics.ObserveCommit)
	// Cleanups run last-in first-out: the server stops before the database.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return ts
}

// lockedBuffer is a log's buffer that goroutines may write at once.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
