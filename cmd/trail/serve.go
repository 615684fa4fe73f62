package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/delivery"
	"github.com/trail-audit/trail/export"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/internal/demo"
	"github.com/trail-audit/trail/internal/lifecycle"
	"github.com/trail-audit/trail/internal/secretbox"
	"github.com/trail-audit/trail/jsonschema"
	"github.com/trail-audit/trail/tlog"
	"github.com/trail-audit/trail/ui"
)

// ShutdownTimeout bounds a graceful shutdown.
const ShutdownTimeout = 15 * time.Second

// Server is a running `trail serve`: the database, the HTTP server and the
// services wired between them.
type Server struct {
	storageFlags
	logFlags
	CheckpointInterval time.Duration
	PurgeInterval      time.Duration
	ExportTTL          time.Duration
	PublicURL          string
	SecretKeyFile      string
	AllowPrivate       bool
	DestinationCAFile  string
	StreamLease        time.Duration
	Addr               string
	RateLimit          int
	OrgRateLimit       int
	RequireSchemas     bool
	Demo               bool
	DemoEvents         int
	LogLevel           string
	LogFormat          string
	PprofAddr          string
	MetricsAddr        string
	AdminKey           string // from TRAIL_ADMIN_KEY only: secrets stay out of argv
	// CheckpointClock, if set, is the clock that signs the checkpoints'
	// timestamps (tests sign them in the past); time.Now otherwise.
	CheckpointClock func() time.Time

	Logger     *slog.Logger
	DB         *store
	HTTP       *httpapi.Server
	Integrator *tlog.Integrator
	Exports    *export.Worker
	Streams    *delivery.Worker
	stderr     io.Writer
	stdout     io.Writer
	pprof      *http.Server
	metrics    *http.Server
	metricsURL string
	purge      lifecycle.Group
	serveErr   chan error // an error that stopped a listener (pprof, metrics)
}

// DefaultPurgeInterval is how often trail serve purges expired events.
const DefaultPurgeInterval = time.Hour

func (m *Main) newServer() *Server {
	return &Server{stderr: m.Stderr, stdout: m.Stdout}
}

func (s *Server) register(fs *flag.FlagSet) {
	s.storageFlags.register(fs)
	s.storageFlags.serving = true
	fs.StringVar(&s.Addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&s.signingKeyFile, "signing-key-file", "", "checkpoint signing key (created at first start; default <data-dir>/log-signing.key); every node of a database needs the same")
	fs.StringVar(&s.logOrigin, "log-origin", "", "origin prefix of the checkpoints, fixed at first start (default: the listen address)")
	fs.DurationVar(&s.CheckpointInterval, "checkpoint-interval", tlog.DefaultInterval, "how often new events are signed into checkpoints")
	fs.DurationVar(&s.PurgeInterval, "purge-interval", DefaultPurgeInterval, "how often events past their retention are purged (at start, then at this interval)")
	fs.DurationVar(&s.ExportTTL, "export-ttl", trail.DefaultExportTTL, "how long a ready export's file is kept")
	fs.StringVar(&s.PublicURL, "public-url", "", "base URL clients reach Trail at, for the links it hands out (portal, export downloads); default: http:// and the listen address, never a request's Host")
	fs.StringVar(&s.SecretKeyFile, "secret-key-file", "", "key that encrypts log stream secrets (created at first start; default <data-dir>/secret.key); every node of a database needs the same")
	fs.BoolVar(&s.AllowPrivate, "allow-private-destinations", false, "let log streams deliver to private and loopback addresses (and plain http URLs)")
	fs.StringVar(&s.DestinationCAFile, "destination-ca-file", "", "PEM certificates of authorities trusted for log stream destinations, besides the system's")
	fs.DurationVar(&s.StreamLease, "stream-lease", trail.StreamLease, "how long a node holds a log stream without renewing; another node takes a dead node's streams over after it")
	fs.IntVar(&s.RateLimit, "rate-limit", httpapi.DefaultRateLimit, "requests a minute per API key (0: no limit)")
	fs.IntVar(&s.OrgRateLimit, "org-rate-limit", -1, "requests a minute per organization, one budget shared by every key acting on it, on top of each key's own (-1: the --rate-limit value; 0: no limit)")
	fs.BoolVar(&s.RequireSchemas, "require-schemas", false, "reject events of actions without a schema")
	fs.BoolVar(&s.Demo, "demo", false, "create org_demo with the demo catalogue's schemas and events")
	fs.IntVar(&s.DemoEvents, "demo-events", demo.DefaultEvents, "events in the demo history")
	fs.StringVar(&s.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&s.LogFormat, "log-format", "text", "text or json")
	fs.StringVar(&s.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics (/metrics) without an API key on this address, the operator's own listener, e.g. 127.0.0.1:9090; off by default (the API's /metrics needs a key with the metrics permission)")
	fs.StringVar(&s.PprofAddr, "pprof-addr", "", "serve Go profiles (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off by default")
}

// DefaultGCPercent is the Go GC target of trail serve when GOGC is unset.
const DefaultGCPercent = 200

func (m *Main) runServe(ctx context.Context, args []string) error {
	s := m.newServer()
	fs := m.newFlagSet("serve", "Run Trail: the API and its background workers.\n\n"+
		"TRAIL_ADMIN_KEY=sk_… (environment only, at least 32 characters) makes sure an\n"+
		"instance-wide admin key with that secret exists; without it, a start that finds\n"+
		"no active admin key creates one and prints it once.")
	s.register(fs)
	if err := m.parse(fs, args); err != nil {
		return err
	}
	s.AdminKey = m.Getenv("TRAIL_ADMIN_KEY")
	if m.Getenv("GOGC") == "" {
		// Ingestion allocates per event and keeps little: a GC target of
		// 200 % spends measurably less CPU collecting (+6–11 % batch
		// throughput here) for a heap of a few tens of MiB more. GOGC
		// overrides it.
		debug.SetGCPercent(DefaultGCPercent)
	}
	if err := s.Open(ctx); err != nil {
		s.Close()
		return err
	}
	select {
	case <-ctx.Done():
		s.Logger.Info("shutting down")
		return s.Close()
	case err := <-s.HTTP.Err():
		s.Logger.Error("the API stopped serving; shutting down", "err", err)
		return errors.Join(err, s.Close())
	case err := <-s.serveErr:
		s.Logger.Error("a listener stopped serving; shutting down", "err", err)
		return errors.Join(err, s.Close())
	}
}

// serve serves srv on ln in the background; an error that stops it
// (other than Close's) stops Trail (Run).
func (s *Server) serve(name string, srv *http.Server, ln net.Listener) {
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			select {
			case s.serveErr <- fmt.Errorf("serve %s: %w", name, err):
			default: // one error is enough to stop
			}
		}
	}()
}

// Open opens the database, makes sure the admin key exists, loads the
// demo if asked and starts serving.
func (s *Server) Open(ctx context.Context) error {
	s.serveErr = make(chan error, 1)
	if err := s.openLogger(); err != nil {
		return err
	}
	if s.AdminKey != "" && !trail.ValidSecret(s.AdminKey) {
		return fmt.Errorf("TRAIL_ADMIN_KEY must start with sk_ and have at least %d characters", trail.MinSecretLength)
	}
	if err := checkPublicURL(s.PublicURL); err != nil {
		return err
	}
	db, err := s.openDB(ctx, s.Logger)
	if err != nil {
		return err
	}
	s.DB = db
	events, orgs, schemas, keys := db.Events, db.Organizations, db.Schemas, db.APIKeys

	generated, err := s.bootstrapKey(ctx, keys)
	if err != nil {
		return err
	}
	id, err := loadLogIdentity(ctx, &s.logFlags, s.dataDir, s.Addr, db.Logs)
	if err != nil {
		return err
	}
	urlKey, err := exportURLKey(ctx, db.Logs)
	if err != nil {
		return err
	}
	box, err := s.openSecretBox(ctx, db.Logs)
	if err != nil {
		return err
	}
	client, err := s.destinationClient()
	if err != nil {
		return err
	}
	node, err := nodeName(s.dataDir)
	if err != nil {
		return err
	}
	validator := jsonschema.NewValidator(schemas)
	validator.RequireSchemas = s.RequireSchemas

	h := httpapi.NewServer()
	h.Addr, h.RateLimit, h.Logger = s.Addr, s.RateLimit, s.Logger
	h.OrgRateLimit = s.OrgRateLimit
	if h.OrgRateLimit < 0 {
		h.OrgRateLimit = s.RateLimit
	}
	h.Events, h.Organizations, h.Schemas, h.APIKeys = events, orgs, schemas, keys
	h.Idempotency = db.Idempotency
	h.Proofs = &tlog.Prover{Store: db.Logs, Key: id.Key}
	h.Unavailable = db.Unavailable
	h.PurgeEvidence = func(ctx context.Context, orgID string, treeSize int64) (*tlog.PurgeEvidence, error) {
		return tlog.FindPurgeEvidence(ctx, events, db.Logs, id.Key, orgID, treeSize)
	}
	h.Exports, h.ExportURLKey, h.PublicURL = db.Exports, urlKey, s.PublicURL
	s.Exports = &export.Worker{Exports: db.Exports, Source: export.Source{Events: events, Logs: db.Logs, Key: id.Key}, Logger: s.Logger, TTL: s.ExportTTL}
	h.ExportCreated = s.Exports.Wake
	h.Validator, h.CheckSchema, h.SchemaCreated = validator, validator.Check, validator.Forget
	h.Metrics = httpapi.NewMetrics()
	s.Streams = &delivery.Worker{Streams: db.Streams, Events: events, Open: box.OpenStream, Client: client, Logger: s.Logger, Observer: h.Metrics,
		Lease: s.StreamLease, Node: node}
	h.Streams, h.SealStream, h.OpenStream, h.TestStream = db.Streams, box.SealStream, box.OpenStream, s.Streams.Test
	h.AllowPlainHTTP = s.AllowPrivate
	h.CheckDestination = func(host string) error { return delivery.CheckHost(host, s.AllowPrivate) }
	h.StreamsChanged, h.EventsAppended = s.Streams.Changed, s.Streams.Wake
	h.Portal, h.UI = db.Portal, ui.Dist
	s.Exports.OnFinish = h.Metrics.ObserveExport
	h.Ready = func(ctx context.Context) error {
		_, err := orgs.FindOrganizationByID(ctx, trail.SystemOrganizationID)
		return err
	}
	db.SetOnCommit(h.Metrics.ObserveCommit)
	s.HTTP = h

	if s.Demo {
		start := time.Now()
		res, err := demo.Load(ctx, orgs, schemas, events, validator, s.DemoEvents, time.Now())
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if res.Created {
			s.Logger.Info("demo loaded", "organization", trail.DemoOrganizationID, "schemas", res.Schemas, "events", res.Events, "duration", time.Since(start).Round(time.Millisecond))
		}
	}
	s.Integrator = &tlog.Integrator{Store: db.Logs, Signer: id.Signer, Timestamper: id.Timestamper, Origin: id.Origin, Interval: s.CheckpointInterval, Logger: s.Logger,
		Now: s.CheckpointClock, OnRound: h.Metrics.ObserveRound}
	// The workers stop at Close, in its order, not when a signal ends ctx.
	bg := context.WithoutCancel(ctx)
	s.Integrator.Start(bg)
	s.startPurge(bg, &tlog.Purger{Store: db.Logs, Events: events, Key: id.Key})
	s.Exports.Start(bg)
	s.Streams.Start(bg)
	if err := h.Open(); err != nil {
		return err
	}
	if err := s.serveSide(h); err != nil {
		return err
	}
	s.Logger.Info("trail serving", "url", h.URL(), "public_url", h.BaseURL(), "version", version(), "database", db.Name, "schema_version", db.SchemaVersion, "log_origin", id.Origin, "log_key", id.Key)
	if s.Demo {
		return s.printDemo(ctx, db, h, generated)
	}
	return nil
}

// openLogger makes the server's logger from --log-level and --log-format.
func (s *Server) openLogger() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.LogLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch s.LogFormat {
	case "json":
		s.Logger = slog.New(slog.NewJSONHandler(s.stderr, opts))
	case "text":
		s.Logger = slog.New(slog.NewTextHandler(s.stderr, opts))
	default:
		return fmt.Errorf("--log-format %q: want text or json", s.LogFormat)
	}
	return nil
}

// serveSide serves the profiles and the metrics on their own listeners,
// when asked, and warns of links that would point at a wildcard address.
func (s *Server) serveSide(h *httpapi.Server) error {
	if s.PprofAddr != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		ln, err := net.Listen("tcp", s.PprofAddr)
		if err != nil {
			return fmt.Errorf("--pprof-addr: %w", err)
		}
		s.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		s.serve("profiles", s.pprof, ln)
		s.Logger.Info("profiles served", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	}
	if s.PublicURL == "" && wildcardAddr(s.Addr) {
		msg := fmt.Sprintf("--addr %s is a wildcard address and --public-url is unset: portal and export links will point at %s, "+
			"which clients cannot reach; set --public-url to the URL they use", s.Addr, h.BaseURL())
		s.Logger.Warn("links point at a wildcard address", "addr", s.Addr, "public_url", h.BaseURL())
		fmt.Fprintf(s.stderr, "\nWARNING: %s.\n\n", msg)
	}
	if s.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", h.Metrics.Handler())
		ln, err := net.Listen("tcp", s.MetricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn)}
		s.serve("metrics", s.metrics, ln)
		s.metricsURL = "http://" + ln.Addr().String() + "/metrics"
		s.Logger.Info("metrics served without a key", "url", s.metricsURL)
	}
	return nil
}

// printDemo prints how to use the demo organization, with a portal link.
func (s *Server) printDemo(ctx context.Context, db *store, h *httpapi.Server, generated string) error {
	base := h.BaseURL()
	link, err := portalLink(ctx, db.Portal, base, &trail.PortalLink{OrganizationID: trail.DemoOrganizationID, Intent: trail.IntentAuditLogs,
		Role: trail.RoleOwner, User: trail.PortalUser{ID: "user_demo_owner", Email: "owner@demo.example", Name: "Demo Owner"}})
	if err != nil {
		return fmt.Errorf("demo portal link: %w", err)
	}
	hint := "export TRAIL_ADMIN_KEY=<your admin key>"
	switch {
	case generated != "":
		hint = "export TRAIL_ADMIN_KEY=<the key printed above>"
	case s.AdminKey != "":
		hint = "# TRAIL_ADMIN_KEY is already set in this environment"
	}
	fmt.Fprintf(s.stderr, `
Demo organization %[1]s is ready. Query it:

  %[2]s
  curl -s -H "Authorization: Bearer $TRAIL_ADMIN_KEY" '%[3]s/audit_logs/events?organization_id=%[1]s&limit=5'
  curl -s -H "Authorization: Bearer $TRAIL_ADMIN_KEY" '%[3]s/audit_logs/events?organization_id=%[1]s&actions=escalation_path.*&actor_types=user'
  curl -s -H "Authorization: Bearer $TRAIL_ADMIN_KEY" '%[3]s/audit_logs/events?organization_id=%[1]s&q=Payments'
  curl -s -H "Authorization: Bearer $TRAIL_ADMIN_KEY" '%[3]s/audit_logs/actions?limit=5'
  curl -s -H "Authorization: Bearer $TRAIL_ADMIN_KEY" '%[3]s/audit_logs/checkpoint?organization_id=%[1]s'

Export it to CSV (docs/EXPORTS.md):

  TRAIL_API_KEY=$TRAIL_ADMIN_KEY TRAIL_URL=%[3]s go run ./cmd/trail export --org %[1]s --from 2020-01-01 -o demo.csv

Stream it to a SIEM (Datadog, Splunk, S3, GCS or a signed HTTPS endpoint; docs/STREAMS.md):

  curl -s -X POST -H "Authorization: Bearer $TRAIL_ADMIN_KEY" %[3]s/audit_logs/streams -d '{"organization_id":"%[1]s","type":"GenericHttps","name":"my SIEM","config":{"url":"https://siem.example.com/trail"}}'

Its log is signed: docs/VERIFYING.md shows how to check it with trail verify.

Open its audit log in a browser, as an owner of %[1]s (the link works once, within 5 minutes):

  %[4]s

Another link: go run ./cmd/trail portal --org %[1]s --role owner --url %[5]s (or POST /portal/generate_link).

`, trail.DemoOrganizationID, hint, h.URL(), link, base)
	return nil
}

// checkPublicURL refuses a --public-url links could not be built on: it
// must be an absolute http or https URL with a host and nothing after
// its path.
func checkPublicURL(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("--public-url %q: want an absolute http:// or https:// URL such as https://trail.example.com", v)
	}
	return nil
}

// wildcardAddr reports whether a listen address accepts connections on
// every interface (0.0.0.0, ::, or no host as in :8080): a link built on
// it names no address a client can use.
func wildcardAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}

// startPurge purges the events past their retention at start and then
// every PurgeInterval, in the background. A purge that fails is retried
// at the next round: nothing is lost by waiting.
func (s *Server) startPurge(ctx context.Context, purger *tlog.Purger) {
	interval := s.PurgeInterval
	if interval <= 0 {
		interval = DefaultPurgeInterval
	}
	s.purge.Start(ctx, func(ctx context.Context) {
		for {
			start := time.Now()
			res, err := purger.Purge(ctx)
			switch {
			case ctx.Err() != nil:
				return
			case err != nil:
				s.Logger.Error("purge expired events; retrying at the next round", "err", err, "next", interval)
			case res.Events > 0 || res.Partitions > 0:
				s.Logger.Info("purged expired events", "events", res.Events, "partitions", res.Partitions, "duration", time.Since(start).Round(time.Millisecond))
			}
			t := time.NewTimer(interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	})
}

// settingExportURLKey names the key that signs export download links: made
// at first start and kept in the database, so that every node signs alike.
const settingExportURLKey = "export_url_key"

func exportURLKey(ctx context.Context, logs trail.LogStore) ([]byte, error) {
	var b [32]byte
	rand.Read(b[:])
	v, err := logs.SetSetting(ctx, settingExportURLKey, hex.EncodeToString(b[:]))
	if err != nil {
		return nil, err
	}
	key, err := hex.DecodeString(v)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("setting %s is not 32 bytes in hex", settingExportURLKey)
	}
	return key, nil
}

// settingSecretKeyCheck names the check value of the key that seals
// stream secrets: the first node stores it, the others compare, so that a
// node with another key refuses to start.
const settingSecretKeyCheck = "secret_key_check"

// openSecretBox loads (or creates) the secret key and checks that it is
// the one of the database.
func (s *Server) openSecretBox(ctx context.Context, logs trail.LogStore) (*secretbox.Box, error) {
	path := s.SecretKeyFile
	if path == "" {
		path = filepath.Join(s.dataDir, "secret.key")
	}
	box, created, err := secretbox.LoadOrCreate(path)
	if err != nil {
		return nil, err
	}
	if created {
		s.Logger.Info("created the secret key of log stream secrets; back it up with the database", "file", path)
	}
	stored, err := logs.SetSetting(ctx, settingSecretKeyCheck, box.Check())
	if err != nil {
		return nil, err
	}
	if stored != box.Check() {
		return nil, fmt.Errorf("the secret key %s is not the one this database's log stream secrets are sealed with: "+
			"every node needs the same --secret-key-file (copy it from the first node)", path)
	}
	return box, nil
}

// nodeName is this node's name in its claims on log streams: made at
// first start and kept in <data-dir>/node-id, so that a restarted node
// takes its streams back at once.
func nodeName(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "node-id")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	host, _ := os.Hostname()
	var b [6]byte
	rand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		if r == ':' || r <= ' ' {
			return '-'
		}
		return r
	}, host) + "-" + hex.EncodeToString(b[:])
	if err := os.WriteFile(path, []byte(name+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return name, nil
}

// destinationClient is the HTTP client of log stream deliveries.
func (s *Server) destinationClient() (*http.Client, error) {
	o := delivery.ClientOptions{AllowPrivate: s.AllowPrivate}
	if s.DestinationCAFile != "" {
		pem, err := os.ReadFile(s.DestinationCAFile)
		if err != nil {
			return nil, fmt.Errorf("--destination-ca-file: %w", err)
		}
		if o.RootCAs, err = delivery.SystemRootsWith(pem); err != nil {
			return nil, fmt.Errorf("--destination-ca-file %s: %w", s.DestinationCAFile, err)
		}
	}
	return delivery.NewClient(o), nil
}

// bootstrapKey makes sure TRAIL_ADMIN_KEY is an admin key, or creates an
// admin key on first start and returns its secret (printed once).
func (s *Server) bootstrapKey(ctx context.Context, keys trail.APIKeyService) (string, error) {
	if s.AdminKey != "" {
		k, err := keys.Authenticate(ctx, s.AdminKey)
		if err == nil {
			if !k.Can(trail.PermAdmin) || k.OrganizationID != "" {
				return "", errors.New("TRAIL_ADMIN_KEY belongs to a key that is not an instance-wide admin key")
			}
			return "", nil
		} else if trail.ErrorCode(err) != trail.EUNAUTHORIZED {
			return "", err
		}
		err = keys.CreateAPIKey(ctx, &trail.APIKey{Name: "bootstrap admin (TRAIL_ADMIN_KEY)", Permissions: []trail.Permission{trail.PermAdmin}, Secret: s.AdminKey})
		if trail.ErrorCode(err) != trail.ECONFLICT {
			return "", err
		}
		// Another node created it a moment ago, or a key with this secret
		// was revoked: a revoked secret never comes back.
		if k, err := keys.Authenticate(ctx, s.AdminKey); err == nil && k.Can(trail.PermAdmin) && k.OrganizationID == "" {
			return "", nil
		}
		return "", errors.New("TRAIL_ADMIN_KEY is the secret of a revoked key: choose a new secret")
	}
	// Make sure an active instance-wide admin key exists.
	f := trail.ListFilter{Limit: 100, Ascending: true}
	for {
		list, more, err := keys.FindAPIKeys(ctx, "", f)
		if err != nil {
			return "", err
		}
		for _, k := range list {
			if k.OrganizationID == "" && k.RevokedAt == nil && k.Can(trail.PermAdmin) {
				return "", nil
			}
		}
		if !more || len(list) == 0 {
			break
		}
		f.After = list[len(list)-1].ID
	}
	k := &trail.APIKey{Name: "bootstrap admin", Permissions: []trail.Permission{trail.PermAdmin}}
	if err := keys.CreateAPIKey(ctx, k); err != nil {
		return "", err
	}
	fmt.Fprintf(s.stderr, "\nTrail created an instance-wide admin API key. It is shown this once; store it now:\n\n  %s\n\n", k.Secret)
	return k.Secret, nil
}

// Close shuts down gracefully: in-flight requests finish, queued events
// are committed, then the database closes. It is safe to call twice.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	var errs []error
	if s.HTTP != nil {
		errs = append(errs, s.HTTP.Close(ctx))
	}
	if s.pprof != nil {
		s.pprof.Close()
	}
	if s.metrics != nil {
		errs = append(errs, s.metrics.Shutdown(ctx))
		s.metrics = nil
	}
	s.purge.Stop()
	if s.Exports != nil {
		s.Exports.Stop()
	}
	if s.Streams != nil {
		s.Streams.Stop()
	}
	if s.Integrator != nil {
		s.Integrator.Stop()
	}
	if s.DB != nil {
		errs = append(errs, s.DB.Close())
	}
	return errors.Join(errs...)
}
