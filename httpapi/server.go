package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/tlog"
)

// Defaults of the HTTP server.
const (
	// DefaultRateLimit is each key's request budget a minute.
	DefaultRateLimit = 6000
	// AuthCacheTTL is how long a verified key is trusted without a lookup.
	// Revocation through this node's API takes effect at once; on other
	// nodes within this time.
	AuthCacheTTL = 2 * time.Second
	// OrgCacheTTL is how long an organization's retention is cached for
	// validating occurred_at.
	OrgCacheTTL = 2 * time.Second
)

// EventValidator checks an event against its action's schema.
type EventValidator interface {
	ValidateEvent(ctx context.Context, in *trail.EventInput) ([]trail.Problem, error)
}

// Server is Trail's HTTP server.
type Server struct {
	// Addr is the listen address; ":0" picks a free port.
	Addr string
	// RateLimit is each key's default requests a minute; 0 turns it off.
	RateLimit int
	// OrgRateLimit is each organization's requests a minute, one budget
	// shared by every key acting on it, on top of each key's own; 0 turns
	// it off. See orgOf for the organization a request counts against.
	OrgRateLimit int
	Logger       *slog.Logger
	Metrics      *Metrics
	Now          func() time.Time
	// Ready reports whether the server can take traffic (/readyz).
	Ready func(ctx context.Context) error
	// SchemaCreated, if set, is told of each new schema version.
	SchemaCreated func(action string)
	// CheckSchema, if set, rejects schemas that do not compile.
	CheckSchema SchemaChecker

	Events        trail.EventService
	Organizations trail.OrganizationService
	Schemas       trail.SchemaService
	APIKeys       trail.APIKeyService
	Idempotency   trail.IdempotencyService // optional: replay of non-event POSTs
	Proofs        trail.ProofService       // checkpoints and proofs (SPEC §6)
	// Unavailable, if set, reports whether an error that is no
	// trail.Error is the database failing for a while (full, unreachable,
	// restarting): such a request gets a 503 with Retry-After instead of a
	// 500, and its client retries (SPEC §4). The driver knows its errors.
	Unavailable func(error) bool
	// PurgeEvidence, if set, gives the evidence a purged event reads with
	// (tlog.FindPurgeEvidence).
	PurgeEvidence func(ctx context.Context, orgID string, treeSize int64) (*tlog.PurgeEvidence, error)
	Exports       trail.ExportService
	Validator     EventValidator

	// ExportURLKey signs export download links; every node of a database
	// needs the same.
	ExportURLKey []byte
	// FacetLimit is the most events the web UI's top actors, event types
	// and target types are counted from (0: 10,000); past it the counts
	// read "N+".
	FacetLimit int
	// ExportCreated, if set, is told of each new export (to wake the
	// export worker).
	ExportCreated func()
	// PublicURL is the base URL clients reach Trail at, for the links it
	// hands out (default: http:// and the listen address; never a
	// request's Host or forwarded headers, see BaseURL).
	PublicURL string

	// Streams stores log streams (SPEC §10); the fields below serve them.
	Streams trail.StreamService
	// SealStream seals a stream's secrets (Secrets into Sealed), and
	// OpenStream opens them.
	SealStream func(s *trail.Stream) error
	OpenStream func(s *trail.Stream) error
	// TestStream sends one event to a stream's destination now. The
	// message of an error with an IsPermanent method (a delivery.Failure)
	// is shown to the tenant, so it must be classified (delivery.Classify);
	// any other error is only logged.
	TestStream func(ctx context.Context, s *trail.Stream, ev *trail.Event) error
	// CheckDestination refuses a destination host on a private network
	// unless the instance allows them.
	CheckDestination func(host string) error
	// AllowPlainHTTP lets stream URLs use http (with private
	// destinations allowed: tests and local receivers).
	AllowPlainHTTP bool
	// StreamsChanged, if set, is told of each change of a stream.
	StreamsChanged func()
	// EventsAppended, if set, is told when events were accepted (to wake
	// the stream workers).
	EventsAppended func()

	// Portal stores portal links and sessions (SPEC §9); UI is the built
	// web UI (ui.Dist). Without both, no UI is served.
	Portal trail.PortalService
	UI     fs.FS

	uiOnce      sync.Once
	uiTemplates *uiTemplates
	uiErr       error

	ln       net.Listener
	srv      *http.Server
	serveErr chan error
	handler  http.Handler

	mu          sync.Mutex // mu guards auth, limiters, orgLimiters and orgs
	auth        map[[32]byte]authEntry
	limiters    map[string]*rate.Limiter
	orgLimiters map[string]*rate.Limiter
	orgs        map[string]orgEntry
}

type authEntry struct {
	key     *trail.APIKey
	expires time.Time
}

type orgEntry struct {
	org     *trail.Organization
	expires time.Time
}

// NewServer returns a Server with defaults. It does no I/O.
func NewServer() *Server {
	s := &Server{
		Addr:         "127.0.0.1:8080",
		RateLimit:    DefaultRateLimit,
		OrgRateLimit: DefaultRateLimit,
		Logger:       slog.Default(),
		Now:          time.Now,
		auth:         map[[32]byte]authEntry{},
		limiters:     map[string]*rate.Limiter{},
		orgLimiters:  map[string]*rate.Limiter{},
		orgs:         map[string]orgEntry{},
	}
	return s
}

// Open listens on Addr and serves in the background.
func (s *Server) Open() error {
	if s.Metrics == nil {
		s.Metrics = NewMetrics()
	}
	s.handler = s.routes()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      120 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn),
	}
	s.serveErr = make(chan error, 1)
	go func() {
		if err := s.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.serveErr <- fmt.Errorf("serve the API: %w", err)
		}
	}()
	return nil
}

// Err returns a channel that receives the error that stopped the server
// from serving (never http.ErrServerClosed, which is Close's); nil before
// Open.
func (s *Server) Err() <-chan error { return s.serveErr }

// URL returns the base URL the server listens on.
func (s *Server) URL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + s.ln.Addr().String()
}

// Close stops accepting requests and waits up to ctx's deadline for those
// in flight.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// route is one endpoint. An empty perm means no authentication.
type route struct {
	method, pattern string
	perm            trail.Permission
	public          bool
	handle          func(w http.ResponseWriter, r *http.Request, key *trail.APIKey)
}

// replayable lists the POSTs whose responses are kept for an
// Idempotency-Key. Events de-duplicate themselves; API key responses hold
// a secret and are never stored.
var replayable = map[string]bool{
	"POST /organizations":                       true,
	"POST /audit_logs/actions/{action}/schemas": true,
	"POST /audit_logs/exports":                  true,
}

// routeTable lists every endpoint; the OpenAPI test checks it against
// openapi.json.
func (s *Server) routeTable() []route {
	return []route{
		{"POST", "/audit_logs/events", trail.PermEventsWrite, false, s.handleCreateEvent},
		{"POST", "/audit_logs/events/batch", trail.PermEventsWrite, false, s.handleCreateEventBatch},
		{"GET", "/audit_logs/events", trail.PermEventsRead, false, s.handleListEvents},
		{"GET", "/audit_logs/events/{id}", trail.PermEventsRead, false, s.handleGetEvent},
		{"POST", "/audit_logs/actions/{action}/schemas", trail.PermSchemasWrite, false, s.handleCreateSchema},
		{"GET", "/audit_logs/checkpoint", trail.PermEventsRead, false, s.handleCheckpoint},
		{"GET", "/audit_logs/proofs/inclusion", trail.PermEventsRead, false, s.handleInclusionProof},
		{"GET", "/audit_logs/proofs/consistency", trail.PermEventsRead, false, s.handleConsistencyProof},
		{"GET", "/audit_logs/log_key", trail.PermEventsRead, false, s.handleLogKey},
		{"POST", "/audit_logs/exports", trail.PermExports, false, s.handleCreateExport},
		{"GET", "/audit_logs/exports/{id}", trail.PermExports, false, s.handleGetExport},
		{"GET", "/audit_logs/exports/{id}/download", "", true, s.handleDownloadExport},
		{"POST", "/audit_logs/streams", trail.PermStreams, false, s.handleCreateStream},
		{"GET", "/audit_logs/streams", trail.PermStreams, false, s.handleListStreams},
		{"GET", "/audit_logs/streams/{id}", trail.PermStreams, false, s.handleGetStream},
		{"PATCH", "/audit_logs/streams/{id}", trail.PermStreams, false, s.handleUpdateStream},
		{"DELETE", "/audit_logs/streams/{id}", trail.PermStreams, false, s.handleDeleteStream},
		{"POST", "/audit_logs/streams/{id}/test", trail.PermStreams, false, s.handleTestStream},
		{"POST", "/audit_logs/streams/{id}/pause", trail.PermStreams, false, s.handlePauseStream},
		{"POST", "/audit_logs/streams/{id}/resume", trail.PermStreams, false, s.handleResumeStream},
		{"POST", "/audit_logs/streams/{id}/replay", trail.PermStreams, false, s.handleReplayStream},
		{"GET", "/audit_logs/actions", trail.PermEventsRead, false, s.handleListActions},
		{"GET", "/audit_logs/actions/{action}/schemas", trail.PermEventsRead, false, s.handleListSchemas},
		{"POST", "/organizations", trail.PermOrganizations, false, s.handleCreateOrganization},
		{"GET", "/organizations", trail.PermOrganizations, false, s.handleListOrganizations},
		{"GET", "/organizations/{id}", trail.PermOrganizations, false, s.handleGetOrganization},
		{"GET", "/organizations/{id}/audit_logs_retention", trail.PermOrganizations, false, s.handleGetRetention},
		{"PUT", "/organizations/{id}/audit_logs_retention", trail.PermOrganizations, false, s.handlePutRetention},
		{"GET", "/organizations/{id}/audit_log_configuration", trail.PermOrganizations, false, s.handleGetAuditLogConfiguration},
		{"POST", "/api_keys", trail.PermKeys, false, s.handleCreateAPIKey},
		{"GET", "/api_keys", trail.PermKeys, false, s.handleListAPIKeys},
		{"GET", "/api_keys/me", "", false, s.handleGetOwnAPIKey},
		{"GET", "/api_keys/{id}", trail.PermKeys, false, s.handleGetAPIKey},
		{"DELETE", "/api_keys/{id}", trail.PermKeys, false, s.handleRevokeAPIKey},
		{"POST", "/portal/generate_link", trail.PermPortal, false, s.handleGenerateLink},
		{"GET", "/healthz", "", true, s.handleHealthz},
		{"GET", "/readyz", "", true, s.handleReadyz},
		{"GET", "/metrics", trail.PermMetrics, false, s.handleMetrics},
		{"GET", "/openapi.json", "", true, s.handleOpenAPI},
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routeTable() {
		mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	s.mountUI(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, trail.Errorf(trail.ENOTFOUND, "No such endpoint: %s %s.", r.Method, r.URL.Path))
	})
	return s.withRequestID(mux)
}

type ctxKey int

const requestIDKey ctxKey = 0

func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [12]byte
		rand.Read(b[:])
		id := "req_" + hex.EncodeToString(b[:])
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// statusWriter records the status for metrics and logs.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (a download
// moves its write deadline on).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) wrap(rt route) http.Handler {
	name := rt.method + " " + rt.pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				s.Logger.Error("panic", "route", name, "panic", v, "request_id", r.Context().Value(requestIDKey))
				if sw.status == 0 {
					s.writeError(sw, r, errors.New("panic"))
				}
			}
			d := time.Since(start)
			s.Metrics.observeRequest(name, sw.status, d)
			if sw.status >= 500 {
				s.Logger.Warn("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration_ms", d.Milliseconds(), "request_id", r.Context().Value(requestIDKey))
			} else {
				s.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration_ms", d.Milliseconds(), "request_id", r.Context().Value(requestIDKey))
			}
		}()
		// No stored value holds a NUL character (no database text column
		// can): refuse it in the path and in parameters as a bad value.
		if strings.IndexByte(r.URL.Path, 0) >= 0 {
			s.writeError(sw, r, trail.Errorf(trail.EINVALID, "The path must not contain the NUL character."))
			return
		}
		for name, vals := range r.URL.Query() {
			for _, v := range vals {
				if strings.IndexByte(v, 0) >= 0 || strings.IndexByte(name, 0) >= 0 {
					s.writeError(sw, r, trail.Errorf(trail.EINVALID, "Parameter '%s' must not contain the NUL character.", strings.ReplaceAll(name, "\x00", "")))
					return
				}
			}
		}
		if rt.public {
			rt.handle(sw, r, nil)
			return
		}
		key, err := s.authenticate(r)
		if err != nil {
			s.writeError(sw, r, err)
			return
		}
		if err := s.allow(sw, key, s.orgOf(r, rt, key)); err != nil {
			s.writeError(sw, r, err)
			return
		}
		if rt.perm != "" && !key.Can(rt.perm) {
			s.writeError(sw, r, trail.Errorf(trail.EFORBIDDEN, "This API key lacks the %s permission.", rt.perm))
			return
		}
		ctx := trail.NewContextWithCaller(r.Context(), &trail.Caller{
			Actor:   trail.Actor{ID: key.ID, Type: "api_key", Name: key.Name},
			Context: requestContext(r),
		})
		if replayable[name] && s.Idempotency != nil && r.Header.Get("Idempotency-Key") != "" {
			s.serveIdempotent(sw, r.WithContext(ctx), key, rt)
			return
		}
		rt.handle(sw, r.WithContext(ctx), key)
	})
}

// serveIdempotent replays the stored response of an earlier request with
// the same key, Idempotency-Key, path and body, or runs the handler and
// stores a 2xx response.
func (s *Server) serveIdempotent(w http.ResponseWriter, r *http.Request, key *trail.APIKey, rt route) {
	body, err := readBody(w, r, trail.MaxRequestBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	h := sha256.New()
	for _, part := range []string{key.ID, r.Method, r.URL.Path, r.Header.Get("Idempotency-Key")} {
		fmt.Fprintf(h, "%d:%s\x00", len(part), part)
	}
	h.Write(body)
	hash := trail.ResponseKey{OrganizationID: key.OrganizationID}
	copy(hash.Hash[:], h.Sum(nil))
	stored, err := s.Idempotency.ClaimResponse(r.Context(), hash)
	if err != nil {
		s.writeError(w, r, err)
		return
	} else if stored != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(stored.Status)
		w.Write(stored.Body)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &recorder{statusWriter: statusWriter{ResponseWriter: w}}
	defer func() {
		if p := recover(); p != nil {
			// Let a retry run again rather than wait for the claim to expire.
			s.Idempotency.ReleaseResponse(context.WithoutCancel(r.Context()), hash)
			panic(p)
		}
	}()
	rt.handle(rec, r, key)
	// The client has its answer; what follows only decides what a retry
	// gets. If it fails, the claim expires after IdempotencyClaimTTL.
	ctx := context.WithoutCancel(r.Context())
	if rec.status >= 200 && rec.status < 300 {
		err = s.Idempotency.FinishResponse(ctx, hash, &trail.StoredResponse{Status: rec.status, Body: rec.body.Bytes()})
	} else {
		err = s.Idempotency.ReleaseResponse(ctx, hash)
	}
	if err != nil {
		s.Logger.Error("idempotency record", "err", err, "request_id", r.Context().Value(requestIDKey))
	}
}

// recorder copies a response as it is written.
type recorder struct {
	statusWriter
	body bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.body.Write(b)
	return r.statusWriter.Write(b)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// requestContext is where a request came from, as its audit events
// record it.
func requestContext(r *http.Request) trail.EventContext {
	return trail.EventContext{Location: clientIP(r), UserAgent: truncate(r.UserAgent(), trail.MaxUserAgentLength)}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

func (s *Server) authenticate(r *http.Request) (*trail.APIKey, error) {
	// RFC 9110 §11.4: the scheme is case-insensitive and one or more
	// spaces separate it from the credentials.
	scheme, secret, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	secret = strings.TrimLeft(secret, " ")
	if !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "Missing API key: send Authorization: Bearer sk_….")
	}
	sum := sha256.Sum256([]byte(secret))
	now := s.Now()
	s.mu.Lock()
	e, ok := s.auth[sum]
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.key, nil
	}
	key, err := s.APIKeys.Authenticate(r.Context(), secret)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.auth) > 10000 {
		clear(s.auth)
	}
	s.auth[sum] = authEntry{key: key, expires: now.Add(AuthCacheTTL)}
	s.mu.Unlock()
	return key, nil
}

func (s *Server) forgetKeys() {
	s.mu.Lock()
	clear(s.auth)
	s.mu.Unlock()
}

// orgOf is the organization whose budget (OrgRateLimit) a request
// draws from: an organization's key's own; for an instance-wide key, the
// organization named in the query (organization_id) or the path
// (/organizations/{id}…), or none. Bodies are not read for it: that would
// decode every body, up to a 5 MiB batch, twice.
func (s *Server) orgOf(r *http.Request, rt route, key *trail.APIKey) string {
	if key.OrganizationID != "" {
		return key.OrganizationID
	}
	if id := r.URL.Query().Get("organization_id"); id != "" {
		return id
	}
	if strings.HasPrefix(rt.pattern, "/organizations/{id}") {
		return r.PathValue("id")
	}
	return ""
}

// allow applies the key's rate limit and, when the request acts on an
// organization, that organization's. A request refused by either takes
// nothing from the other.
func (s *Server) allow(w http.ResponseWriter, key *trail.APIKey, orgID string) error {
	limit := s.RateLimit
	if key.RateLimit != nil {
		limit = *key.RateLimit
	}
	now := s.Now()
	s.mu.Lock()
	kl := limiterLocked(s.limiters, key.ID, limit)
	var ol *rate.Limiter
	if orgID != "" {
		ol = limiterLocked(s.orgLimiters, orgID, s.OrgRateLimit)
	}
	s.mu.Unlock()
	var reserved []*rate.Reservation
	for _, l := range []*rate.Limiter{kl, ol} {
		if l == nil {
			continue
		}
		res := l.ReserveN(now, 1)
		reserved = append(reserved, res)
		if d := res.DelayFrom(now); d > 0 {
			for _, r := range reserved {
				r.CancelAt(now)
			}
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
			return trail.Errorf(trail.ERATELIMITED, "Too many requests.")
		}
	}
	return nil
}

// limiterLocked returns the limiter of id in m for limit requests a
// minute (nil when limit is 0 or less), made or remade when the limit
// changed. The caller holds s.mu.
func limiterLocked(m map[string]*rate.Limiter, id string, limit int) *rate.Limiter {
	if limit <= 0 {
		return nil
	}
	l, ok := m[id]
	if !ok || l.Burst() != limit {
		if len(m) > 100000 {
			clear(m)
		}
		l = rate.NewLimiter(rate.Limit(float64(limit)/60), limit)
		m[id] = l
	}
	return l
}

// UnavailableRetryAfter is the Retry-After, in seconds, of a 503 for a
// database that is full, unreachable or restarting.
const UnavailableRetryAfter = 2

// statusOf maps error codes to HTTP statuses.
var statusOf = map[string]int{
	trail.EINVALID:          http.StatusBadRequest,
	trail.EINVALIDEVENT:     http.StatusBadRequest,
	trail.EINVALIDSCHEMA:    http.StatusBadRequest,
	trail.EINVALIDRANGE:     http.StatusBadRequest,
	trail.ESCHEMATOOCOMPLEX: http.StatusBadRequest,
	trail.EMALFORMED:        http.StatusUnprocessableEntity,
	trail.EUNAUTHORIZED:     http.StatusUnauthorized,
	trail.EFORBIDDEN:        http.StatusForbidden,
	trail.ENOTFOUND:         http.StatusNotFound,
	trail.ECONFLICT:         http.StatusConflict,
	trail.ETOOLARGE:         http.StatusRequestEntityTooLarge,
	trail.ERATELIMITED:      http.StatusTooManyRequests,
	trail.EUNAVAILABLE:      http.StatusServiceUnavailable,
	trail.EINTERNAL:         http.StatusInternalServerError,
}

// errorBody is the JSON of an error (SPEC §4). For 422 the errors are
// WorkOS's [{code, field}]; otherwise [{instancePath, message}].
type errorBody struct {
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
	Errors  any    `json:"errors,omitempty"`
}

type fieldError struct {
	Code  string `json:"code"`
	Field string `json:"field"`
}

func errorJSON(err error) (int, errorBody) {
	code := trail.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	body := errorBody{Message: trail.ErrorMessage(err), Code: code}
	if ps := trail.ErrorProblems(err); len(ps) > 0 {
		if code == trail.EMALFORMED {
			fes := make([]fieldError, len(ps))
			for i, p := range ps {
				fes[i] = fieldError{Code: p.Message, Field: p.Path}
			}
			body.Errors = fes
		} else {
			body.Errors = ps
		}
	}
	return status, body
}

// writeError writes err as JSON. Internal details are logged, never sent.
// unavailable reports whether err is the database failing for a while
// (Server.Unavailable), not a mistake.
func (s *Server) unavailable(err error) bool {
	return trail.ErrorCode(err) == trail.EINTERNAL && s.Unavailable != nil && s.Unavailable(err)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if s.unavailable(err) {
		s.Logger.Warn("database unavailable", "method", r.Method, "path", r.URL.Path, "err", err, "request_id", r.Context().Value(requestIDKey))
		w.Header().Set("Retry-After", strconv.Itoa(UnavailableRetryAfter))
		err = trail.Errorf(trail.EUNAVAILABLE, "The database is unavailable for now (full, unreachable or restarting): retry. The request was not acknowledged; with an Idempotency-Key its retry stores nothing twice.")
	}
	status, body := errorJSON(err)
	if status == http.StatusInternalServerError {
		s.Logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err, "request_id", r.Context().Value(requestIDKey))
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// malformed returns a 422 with WorkOS's field errors.
func malformed(fieldCodes ...string) error { return trail.Malformed(fieldCodes...) }

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ *trail.APIKey) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ *trail.APIKey) {
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			s.Logger.Warn("not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "message": "The database is not reachable."})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// org returns an organization the key may act on, or ENOTFOUND: another
// tenant's organization is indistinguishable from a missing one.
func (s *Server) org(ctx context.Context, key *trail.APIKey, id string) (*trail.Organization, error) {
	// No organization id holds a NUL character (no database can store one).
	if id == "" || !key.CanAct(id) || strings.IndexByte(id, 0) >= 0 {
		return nil, trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", strings.ReplaceAll(id, "\x00", ""))
	}
	return s.cachedOrg(ctx, id)
}

// cachedOrg reads an organization through the server's short cache.
func (s *Server) cachedOrg(ctx context.Context, id string) (*trail.Organization, error) {
	now := s.Now()
	s.mu.Lock()
	e, ok := s.orgs[id]
	s.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.org, nil
	}
	org, err := s.Organizations.FindOrganizationByID(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.orgs) > 100000 {
		clear(s.orgs)
	}
	s.orgs[id] = orgEntry{org: org, expires: now.Add(OrgCacheTTL)}
	s.mu.Unlock()
	return org, nil
}

// exportFileName names an export's file by its organization and period.
// Without the organization's name (it cannot be read now) the file is
// named by the organization's ID.
func (s *Server) exportFileName(ctx context.Context, ex *trail.Export) string {
	var name string
	if org, err := s.cachedOrg(ctx, ex.OrganizationID); err == nil {
		name = org.Name
	}
	return ex.FileName(name)
}

func (s *Server) forgetOrg(id string) {
	s.mu.Lock()
	delete(s.orgs, id)
	s.mu.Unlock()
}
