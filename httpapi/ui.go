package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// ContentSecurityPolicy is sent with every page of the UI: nothing but
// this server's own style sheet and icon, no script at all, forms posted
// only here, never framed.
const ContentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// uiPageSize is how many events a page of the audit log shows.
const uiPageSize = 50

// uiPage is what every page's template gets.
type uiPage struct {
	Title   string
	Nav     string // "log" or "settings": the current menu entry
	Refresh string // a meta refresh, while an export runs
	Session *uiSession
	CSRF    string
	Flash   string
	Error   string
	Data    any
}

type uiTemplates struct {
	pages  map[string]*template.Template
	assets map[string]string // name → path under /ui/
}

// templates parses the UI's templates once: each page with the layout.
func (s *Server) templates() (*uiTemplates, error) {
	s.uiOnce.Do(func() {
		t := &uiTemplates{pages: map[string]*template.Template{}}
		s.uiTemplates, s.uiErr = t, nil
		data, err := fs.ReadFile(s.UI, "manifest.json")
		if err != nil {
			s.uiErr = fmt.Errorf("ui manifest: %w", err)
			return
		}
		if err := json.Unmarshal(data, &t.assets); err != nil {
			s.uiErr = fmt.Errorf("ui manifest: %w", err)
			return
		}
		funcs := template.FuncMap{
			"asset": func(name string) string { return "/ui/" + t.assets[name] },
			"when":  func(ts time.Time) string { return ts.UTC().Format("2006-01-02 15:04:05") },
			"whenp": func(ts *time.Time) string {
				if ts == nil {
					return "—"
				}
				return ts.UTC().Format("2006-01-02 15:04:05")
			},
			"iso":     func(ts time.Time) string { return ts.UTC().Format(time.RFC3339Nano) },
			"count":   formatCount,
			"bytes":   formatBytes,
			"jsonval": func(v any) string { b, _ := json.Marshal(v); return string(b) },
		}
		layout, err := template.New("layout.html").Funcs(funcs).ParseFS(s.UI, "templates/layout.html")
		if err != nil {
			s.uiErr = err
			return
		}
		names, err := fs.Glob(s.UI, "templates/*.html")
		if err != nil {
			s.uiErr = err
			return
		}
		for _, name := range names {
			base := strings.TrimSuffix(path.Base(name), ".html")
			if base == "layout" {
				continue
			}
			p, err := template.Must(layout.Clone()).ParseFS(s.UI, name)
			if err != nil {
				s.uiErr = err
				return
			}
			t.pages[base] = p
		}
	})
	return s.uiTemplates, s.uiErr
}

// render writes a page with the UI's security headers.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *uiPage) {
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if h.Get("Referrer-Policy") == "" {
		h.Set("Referrer-Policy", "same-origin")
	}
	t, err := s.templates()
	var buf bytes.Buffer
	if err == nil {
		if page := t.pages[name]; page == nil {
			err = fmt.Errorf("no template %q", name)
		} else {
			if p.Session != nil {
				p.CSRF = p.Session.csrf()
			}
			err = page.ExecuteTemplate(&buf, "layout", p)
		}
	}
	if err != nil {
		s.Logger.Error("render page", "page", name, "err", err, "request_id", r.Context().Value(requestIDKey))
		h.Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "Trail could not show this page. The server's log says why.\n")
		return
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// uiMessage is a page that only says something: signed out, refused.
type uiMessage struct {
	Heading, Text string
}

func (s *Server) renderMessage(w http.ResponseWriter, r *http.Request, u *uiSession, status int, heading, text string) {
	s.render(w, r, status, "message", &uiPage{Title: heading, Session: u, Data: uiMessage{heading, text}})
}

// uiRoute is one page or form of the UI.
type uiRoute struct {
	method, pattern string
	// member: a member may use it (only the sign out); other routes show
	// members the role page.
	member bool
	handle func(w http.ResponseWriter, r *http.Request, u *uiSession)
}

func (s *Server) uiRoutes() []uiRoute {
	return []uiRoute{
		{"GET", "/ui/{$}", false, s.uiEvents},
		{"GET", "/ui/events/{id}", false, s.uiEvent},
		{"GET", "/ui/events/{id}/proof.json", false, s.uiEventProof},
		{"POST", "/ui/exports", false, s.uiCreateExport},
		{"GET", "/ui/exports/{id}", false, s.uiExport},
		{"GET", "/ui/exports/{id}/checkpoint.txt", false, s.uiExportCheckpoint},
		{"GET", "/ui/settings", false, s.uiSettings},
		{"GET", "/ui/checkpoint.txt", false, s.uiCheckpointFile},
		{"GET", "/ui/log.key", false, s.uiLogKeyFile},
		{"GET", "/ui/streams/new", false, s.uiNewStream},
		{"POST", "/ui/streams", false, s.uiCreateStream},
		{"GET", "/ui/streams/{id}", false, s.uiEditStream},
		{"POST", "/ui/streams/{id}", false, s.uiUpdateStream},
		{"POST", "/ui/streams/{id}/{op}", false, s.uiStreamOp},
		{"POST", "/ui/logout", true, s.uiLogout},
	}
}

// mountUI adds the UI's routes to mux: pages behind the session, the
// portal links that open sessions, and the assets.
func (s *Server) mountUI(mux *http.ServeMux) {
	if s.UI == nil || s.Portal == nil {
		return
	}
	csrf := http.NewCrossOriginProtection()
	for _, rt := range s.uiRoutes() {
		name := rt.method + " " + rt.pattern
		mux.Handle(name, s.observe(name, func(w http.ResponseWriter, r *http.Request) {
			u, err := s.session(r)
			if err != nil {
				if s.unavailable(err) {
					s.uiFail(w, r, nil, err)
					return
				}
				if trail.ErrorCode(err) != trail.EUNAUTHORIZED && trail.ErrorCode(err) != trail.ENOTFOUND {
					s.Logger.Error("ui session", "err", err, "request_id", r.Context().Value(requestIDKey))
					s.renderMessage(w, r, nil, http.StatusInternalServerError, "Something went wrong", "Trail could not read your session. Try again in a moment.")
					return
				}
				s.renderMessage(w, r, nil, http.StatusUnauthorized, "You are signed out",
					"Your session has ended or this browser has none. Open the audit log again from your application: it gives you a new link.")
				return
			}
			if rt.method == "POST" {
				r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
				if csrf.Check(r) != nil || !u.checkCSRF(r) {
					s.renderMessage(w, r, u, http.StatusForbidden, "Request refused",
						"This form did not come from this page of Trail (its security token is missing or stale). Go back, reload the page and try again.")
					return
				}
			}
			if !rt.member && !u.CanView() {
				s.render(w, r, http.StatusForbidden, "role", &uiPage{Title: "Owner or Admin role needed", Session: u})
				return
			}
			rt.handle(w, r, u)
		}))
	}
	mux.Handle("GET /portal/{token}", s.observe("GET /portal/{token}", s.handleOpenPortal))
	mux.Handle("GET /ui/assets/{file}", s.observe("GET /ui/assets/{file}", s.uiAsset))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	mux.Handle("/ui/", s.observe("/ui/", func(w http.ResponseWriter, r *http.Request) {
		u, _ := s.session(r)
		s.renderMessage(w, r, u, http.StatusNotFound, "Page not found", "There is no such page in Trail's audit log.")
	}))
}

// observe wraps a UI handler with the request's metrics and a recovered
// panic.
func (s *Server) observe(name string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				s.Logger.Error("panic", "route", name, "panic", v, "request_id", r.Context().Value(requestIDKey))
				if sw.status == 0 {
					http.Error(sw, "internal error", http.StatusInternalServerError)
				}
			}
			s.Metrics.observeRequest(name, sw.status, time.Since(start))
		}()
		h(sw, r)
	})
}

// uiAsset serves a hashed asset: it never changes under its name.
func (s *Server) uiAsset(w http.ResponseWriter, r *http.Request) {
	name := "assets/" + r.PathValue("file")
	data, err := fs.ReadFile(s.UI, name)
	if err != nil || strings.Contains(r.PathValue("file"), "/") {
		http.NotFound(w, r)
		return
	}
	ct := map[string]string{".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".js": "text/javascript; charset=utf-8"}[path.Ext(name)]
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(data)
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request, u *uiSession) {
	if err := s.Portal.EndPortalSession(r.Context(), u.secret); err != nil {
		s.Logger.Error("end portal session", "err", err, "request_id", r.Context().Value(requestIDKey))
		s.renderMessage(w, r, u, http.StatusInternalServerError, "Not signed out", "Trail could not end your session. Try again.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: s.secureCookies(r), SameSite: http.SameSiteStrictMode})
	s.renderMessage(w, r, nil, http.StatusOK, "Signed out", "You are signed out of the audit log. Open it again from your application.")
}

// --- the audit log ---

// uiFilter is the audit log's filters as the page's URL holds them.
type uiFilter struct {
	Q, Action, Actor, TargetType, TargetID string
	From, To                               string // datetime-local values, UTC, or dates
	Range                                  string // a preset, when From and To are empty
	Before, After                          string // page cursors
}

// uiPresets are the date range presets, in the order shown.
var uiPresets = []struct {
	Key, Label string
	Span       time.Duration
}{
	{"1h", "Last hour", time.Hour}, {"24h", "Last 24 hours", 24 * time.Hour}, {"7d", "Last 7 days", 7 * 24 * time.Hour},
	{"30d", "Last 30 days", 30 * 24 * time.Hour}, {"90d", "Last 90 days", 90 * 24 * time.Hour}, {"all", "All time", 0},
}

// defaultRange is the preset of a page with no date filter.
const defaultRange = "30d"

func parseUIFilter(q url.Values) uiFilter {
	g := func(n string) string { return strings.TrimSpace(q.Get(n)) }
	f := uiFilter{Q: g("q"), Action: g("actions"), Actor: g("actor_ids"), TargetType: g("targets"), TargetID: g("target_ids"),
		From: g("from"), To: g("to"), Range: g("range"), Before: g("before"), After: g("after")}
	if f.From != "" || f.To != "" {
		f.Range = ""
	} else if f.Range == "" {
		f.Range = defaultRange
	}
	return f
}

// values is the filter as URL parameters, without empty ones (and
// without the default preset), with the page cursor if asked.
func (f uiFilter) values(cursor bool) url.Values {
	v := url.Values{}
	set := func(n, val string) {
		if val != "" {
			v.Set(n, val)
		}
	}
	set("q", f.Q)
	set("actions", f.Action)
	set("actor_ids", f.Actor)
	set("targets", f.TargetType)
	set("target_ids", f.TargetID)
	set("from", f.From)
	set("to", f.To)
	if f.Range != defaultRange {
		set("range", f.Range)
	}
	if cursor {
		set("before", f.Before)
		set("after", f.After)
	}
	return v
}

// ExportValues are the filter's fields for the export form.
func (f uiFilter) ExportValues() map[string]string {
	out := map[string]string{}
	for k, v := range f.values(false) {
		out[k] = v[0]
	}
	if f.Range != "" {
		out["range"] = f.Range
	}
	return out
}

// URL is the audit log page of the filter, without a page cursor.
func (f uiFilter) URL() string { return pageURL("/ui/", f.values(false)) }

func pageURL(base string, v url.Values) string {
	if len(v) == 0 {
		return base
	}
	return base + "?" + v.Encode()
}

// parseUITime reads a From or To value: a datetime-local (UTC) or a
// date, from 1970 to 2261 (what the stored times hold).
func parseUITime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1970 || t.Year() > 2261 {
				return time.Time{}, errors.New("out of range")
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not a date and time")
}

// period is the filter's date range: start and end (either may be
// unset), for the list; and a closed one, for the histogram.
func (f uiFilter) period(now time.Time, retentionDays int) (start, end *time.Time, hist [2]time.Time, err error) {
	// Presets end at the next whole minute, so that a page's buckets and
	// zoom links fall on whole minutes.
	end0 := now.UTC().Truncate(time.Minute).Add(time.Minute)
	oldest := end0.Add(-time.Duration(max(retentionDays, 1)) * 24 * time.Hour)
	hist = [2]time.Time{oldest, end0}
	if f.From != "" || f.To != "" {
		for i, v := range []string{f.From, f.To} {
			if v == "" {
				continue
			}
			t, perr := parseUITime(v)
			if perr != nil {
				return nil, nil, hist, fmt.Errorf("%s: %q is not a date and time from 1970 to 2261 (YYYY-MM-DDTHH:MM, UTC)", []string{"From", "Until"}[i], v)
			}
			if i == 0 {
				start, hist[0] = &t, t
			} else {
				end, hist[1] = &t, t
			}
		}
		if start != nil && end != nil && !start.Before(*end) {
			return nil, nil, hist, uiInputError("Until must be after From")
		}
		if end != nil && start == nil && !hist[0].Before(hist[1]) {
			hist[0] = hist[1].Add(-24 * time.Hour)
		}
		if start != nil && end == nil && !hist[0].Before(hist[1]) {
			hist[1] = hist[0].Add(24 * time.Hour)
		}
		return start, end, hist, nil
	}
	for _, p := range uiPresets {
		if p.Key == f.Range {
			if p.Span == 0 {
				return nil, nil, hist, nil
			}
			s := end0.Add(-p.Span)
			return &s, &end0, [2]time.Time{s, end0}, nil
		}
	}
	return nil, nil, hist, fmt.Errorf("unknown date range %q", f.Range)
}

// eventFilter turns the page's filter into the store's, checked as the
// API checks its parameters.
func (s *Server) eventFilter(u *uiSession, f uiFilter) (trail.EventFilter, [2]time.Time, error) {
	start, end, hist, err := f.period(s.Now(), u.org.RetentionDays)
	if err != nil {
		return trail.EventFilter{}, hist, err
	}
	q := url.Values{}
	list := func(name, v string) {
		for _, item := range strings.Split(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				q.Add(name, item)
			}
		}
	}
	list("actions", f.Action)
	list("actor_ids", f.Actor)
	list("targets", f.TargetType)
	list("target_ids", f.TargetID)
	if f.Q != "" {
		q.Set("q", f.Q)
	}
	if start != nil {
		q.Set("range_start", start.Format(time.RFC3339Nano))
	}
	if end != nil {
		q.Set("range_end", end.Format(time.RFC3339Nano))
	}
	if f.Before != "" {
		q.Set("before", f.Before)
	} else if f.After != "" {
		q.Set("after", f.After)
	}
	q.Set("limit", strconv.Itoa(uiPageSize))
	ef, err := parseEventFilter(q, u.key)
	if err != nil {
		var te *trail.Error
		if errors.As(err, &te) && len(te.Problems) > 0 {
			names := map[string]string{"actions": "Event type", "actor_ids": "Actor", "targets": "Target type", "target_ids": "Target ID",
				"q": "Search", "before": "Page", "after": "Page", "range_end": "Until"}
			label := names[te.Problems[0].Path]
			if label == "" {
				label = te.Problems[0].Path
			}
			return ef, hist, fmt.Errorf("%s: %s", label, te.Problems[0].Message)
		}
		return ef, hist, err
	}
	return ef, hist, nil
}

type uiPreset struct {
	Label, URL string
	Current    bool
}

type uiEventsData struct {
	F        uiFilter
	Presets  []uiPreset
	Actions  []string
	Events   []*trail.Event
	Newer    string // page URLs
	Older    string
	Newest   string
	Hist     *uiHistogram
	Query    template.URL // "?" and the filter's query string, for links that keep it
	RangeAll string       // the page with the same filters over all time
	Chips    []uiPreset
}

func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request, u *uiSession) {
	f := parseUIFilter(r.URL.Query())
	// A form sends its empty fields too: send the browser to the short
	// URL of the same view, which is the one to bookmark or share.
	if clean := f.values(true); r.URL.RawQuery != "" && !maps.EqualFunc(clean, r.URL.Query(), slices.Equal) {
		http.Redirect(w, r, pageURL("/ui/", f.values(true)), http.StatusSeeOther)
		return
	}
	d := &uiEventsData{F: f}
	if q := f.values(false).Encode(); q != "" {
		d.Query = template.URL("?" + q) // url.Values.Encode escapes every value
	}
	for _, p := range uiPresets {
		g := f
		g.From, g.To, g.Range, g.Before, g.After = "", "", p.Key, "", ""
		d.Presets = append(d.Presets, uiPreset{Label: p.Label, URL: g.URL(), Current: f.Range == p.Key})
		if p.Key == "all" {
			d.RangeAll = g.URL()
		}
	}
	d.Chips = filterChips(f)
	d.Actions = s.actionSuggestions(r, u)
	page := &uiPage{Title: "Audit log", Nav: "log", Session: u, Data: d}
	ef, hist, err := s.eventFilter(u, f)
	if err != nil {
		page.Error = err.Error()
		s.render(w, r, http.StatusBadRequest, "events", page)
		return
	}
	t0 := time.Now()
	res, err := s.Events.FindEvents(r.Context(), ef)
	listTime := time.Since(t0)
	if err != nil {
		if trail.ErrorCode(err) == trail.EINVALID {
			page.Error = "This page of the log no longer exists (retention may have removed it): start again from the newest events."
			d.Newest = f.URL()
			s.render(w, r, http.StatusBadRequest, "events", page)
			return
		}
		s.uiFail(w, r, u, err)
		return
	}
	d.Events = res.Events
	if n := len(res.Events); n > 0 {
		first, last := EncodeEventCursor(res.Events[0].Index), EncodeEventCursor(res.Events[n-1].Index)
		older, newer := f, f
		older.Before, older.After = "", last
		newer.Before, newer.After = first, ""
		if (f.Before == "" && res.HasMore) || f.Before != "" {
			d.Older = pageURL("/ui/", older.values(true))
		}
		if f.After != "" || (f.Before != "" && res.HasMore) {
			d.Newer = pageURL("/ui/", newer.values(true))
		}
	}
	if f.After != "" || f.Before != "" {
		d.Newest = f.URL()
	}
	ef.Before, ef.After = nil, nil
	t1 := time.Now()
	d.Hist = s.histogram(r, ef, hist, f)
	// The two reads of the page, for the browser's developer tools and
	// trail bench.
	w.Header().Set("Server-Timing", fmt.Sprintf("list;dur=%.1f, histogram;dur=%.1f",
		float64(listTime.Microseconds())/1000, float64(time.Since(t1).Microseconds())/1000))
	s.render(w, r, http.StatusOK, "events", page)
}

// filterChips lists the filters that are set, each with a link that
// removes it.
func filterChips(f uiFilter) []uiPreset {
	var chips []uiPreset
	add := func(label, val string, clear func(*uiFilter)) {
		if val == "" {
			return
		}
		g := f
		g.Before, g.After = "", ""
		clear(&g)
		chips = append(chips, uiPreset{Label: label + ": " + val, URL: g.URL()})
	}
	add("Search", f.Q, func(g *uiFilter) { g.Q = "" })
	add("Event type", f.Action, func(g *uiFilter) { g.Action = "" })
	add("Actor", f.Actor, func(g *uiFilter) { g.Actor = "" })
	add("Target type", f.TargetType, func(g *uiFilter) { g.TargetType = "" })
	add("Target ID", f.TargetID, func(g *uiFilter) { g.TargetID = "" })
	add("From", strings.Replace(f.From, "T", " ", 1), func(g *uiFilter) { g.From = ""; g.fixRange() })
	add("Until", strings.Replace(f.To, "T", " ", 1), func(g *uiFilter) { g.To = ""; g.fixRange() })
	return chips
}

func (f *uiFilter) fixRange() {
	if f.From == "" && f.To == "" && f.Range == "" {
		f.Range = defaultRange
	}
}

// actionSuggestions are the registered actions and Trail's own, for the
// event type field.
func (s *Server) actionSuggestions(r *http.Request, u *uiSession) []string {
	seen := map[string]bool{}
	for _, a := range []string{trail.ActionPortalSessionCreated, trail.ActionExportCreated, trail.ActionStreamCreated,
		trail.ActionStreamUpdated, trail.ActionStreamDeleted, trail.ActionStreamPaused, trail.ActionStreamResumed,
		trail.ActionStreamReplayed, trail.ActionRetentionUpdated, trail.ActionAPIKeyCreated, trail.ActionAPIKeyRevoked} {
		seen[a] = true
	}
	if s.Schemas != nil {
		f := trail.ListFilter{Limit: 100}
		for range 10 {
			list, more, err := s.Schemas.FindActions(r.Context(), f)
			if err != nil {
				s.Logger.Warn("ui: list actions", "err", err)
				break
			}
			for _, a := range list {
				seen[a.Name] = true
			}
			if !more || len(list) == 0 {
				break
			}
			f.After = list[len(list)-1].Name
		}
	}
	out := make([]string, 0, len(seen))
	for a := range seen {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// uiFail shows an unexpected failure (the server's log has it).
func (s *Server) uiFail(w http.ResponseWriter, r *http.Request, u *uiSession, err error) {
	code := trail.ErrorCode(err)
	if s.unavailable(err) {
		code = trail.EUNAVAILABLE
		s.Logger.Warn("database unavailable", "path", r.URL.Path, "err", err, "request_id", r.Context().Value(requestIDKey))
		w.Header().Set("Retry-After", strconv.Itoa(UnavailableRetryAfter))
	}
	switch code {
	case trail.ENOTFOUND:
		s.renderMessage(w, r, u, http.StatusNotFound, "Not found", trail.ErrorMessage(err))
		return
	case trail.EUNAVAILABLE:
		s.renderMessage(w, r, u, http.StatusServiceUnavailable, "Trail is busy", "Trail is overloaded or cannot reach its database right now. Try again in a moment.")
		return
	}
	s.Logger.Error("ui", "path", r.URL.Path, "err", err, "request_id", r.Context().Value(requestIDKey))
	s.renderMessage(w, r, u, http.StatusInternalServerError, "Something went wrong",
		"Trail could not load this page. Try again in a moment; the server's log has the details (request "+fmt.Sprint(r.Context().Value(requestIDKey))+").")
}

// --- the histogram ---

type uiHistogram struct {
	Bars        []uiBar
	Total       int64
	Max         int64
	Start, End  time.Time
	BucketLabel string
	Width       int // of the SVG's view box
	Error       string
	Summary     string
}

type uiBar struct {
	X, Y, W, H float64
	Count      int64
	Label, URL string
}

// histogramWidths are the bucket widths a histogram picks from: the
// smallest that needs at most histogramBars.
var histogramWidths = []struct {
	d     time.Duration
	label string
}{
	{time.Minute, "minute"}, {5 * time.Minute, "5 minutes"}, {15 * time.Minute, "15 minutes"}, {time.Hour, "hour"},
	{3 * time.Hour, "3 hours"}, {6 * time.Hour, "6 hours"}, {12 * time.Hour, "12 hours"}, {24 * time.Hour, "day"},
	{7 * 24 * time.Hour, "week"}, {30 * 24 * time.Hour, "30 days"}, {365 * 24 * time.Hour, "year"},
}

const histogramBars = 90

// HistogramTimeout bounds the count behind the histogram: past it, the
// page shows the events and says the range is too large to chart.
var HistogramTimeout = 5 * time.Second

func (s *Server) histogram(r *http.Request, f trail.EventFilter, period [2]time.Time, uf uiFilter) *uiHistogram {
	h := &uiHistogram{Start: period[0], End: period[1]}
	counter, ok := s.Events.(trail.EventCounter)
	if !ok {
		h.Error = "This storage cannot chart activity."
		return h
	}
	span := period[1].Sub(period[0])
	width := histogramWidths[len(histogramWidths)-1]
	for _, w := range histogramWidths {
		if span <= w.d*histogramBars {
			width = w
			break
		}
	}
	h.BucketLabel = width.label
	f.RangeStart, f.RangeEnd = &period[0], &period[1]
	ctx, cancel := context.WithTimeout(r.Context(), HistogramTimeout)
	defer cancel()
	counts, err := counter.CountEvents(ctx, f, width.d)
	if err != nil {
		if ctx.Err() != nil {
			h.Error = "Too many events to chart in this range quickly: narrow the dates or add a filter."
		} else {
			s.Logger.Error("ui: histogram", "err", err, "request_id", r.Context().Value(requestIDKey))
			h.Error = "The activity chart could not be loaded."
		}
		return h
	}
	for _, c := range counts {
		h.Total += c
		h.Max = max(h.Max, c)
	}
	h.Width = len(counts) * 10
	// Buckets are aligned on the epoch (whole hours, days); the first and
	// the last may be cut by the period.
	b0 := period[0].UnixNano() / int64(width.d) * int64(width.d)
	for i, c := range counts {
		from := time.Unix(0, b0).UTC().Add(time.Duration(i) * width.d)
		to := from.Add(width.d)
		if from.Before(period[0]) {
			from = period[0]
		}
		if to.After(period[1]) {
			to = period[1]
		}
		bh := 0.0
		if h.Max > 0 && c > 0 {
			bh = max(2, float64(c)/float64(h.Max)*96)
		}
		zoom := uf
		zoom.From, zoom.To, zoom.Range, zoom.Before, zoom.After = from.Format("2006-01-02T15:04"), to.Format("2006-01-02T15:04"), "", "", ""
		h.Bars = append(h.Bars, uiBar{X: float64(i*10) + 1, Y: 100 - bh, W: 8, H: bh, Count: c,
			Label: fmt.Sprintf("%s events from %s to %s UTC", formatCount(c), from.Format("2006-01-02 15:04"), to.Format("2006-01-02 15:04")),
			URL:   zoom.URL()})
	}
	h.Summary = fmt.Sprintf("Activity chart: %s events from %s to %s UTC, one bar per %s, at most %s in one bar.",
		formatCount(h.Total), period[0].Format("2006-01-02 15:04"), period[1].Format("2006-01-02 15:04"), width.label, formatCount(h.Max))
	return h
}

func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
