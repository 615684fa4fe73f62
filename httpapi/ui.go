package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
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
	"sync"
	"time"

	"github.com/trail-audit/trail"
)

// ContentSecurityPolicy is sent with every page of the UI: nothing but
// this server's own style sheet and icon, no script at all, forms posted
// only here, never framed.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// uiPageSize is how many events a page of the audit log shows.
const uiPageSize = 50

// uiPage is what every page's template gets.
type uiPage struct {
	Title   string
	Nav     string // "log" or "settings": the current menu entry
	Refresh string // a meta refresh, while an export runs
	Session *uiSession
	Zone    *uiZone // the zone of the page's times
	Now     time.Time
	Here    string // the page's own path and query, for forms that come back to it
	CSRF    string
	Flash   string
	Error   string
	Data    any
	// Results: the page lists events, which a skip link leads to.
	Results bool
	// AskZone: the page's script may send the browser's time zone and
	// reload (a GET page of a session whose link named no zone).
	AskZone bool
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
			"when":  func(z *uiZone, ts time.Time) string { return z.when(ts) },
			"whenp": func(z *uiZone, ts *time.Time) string {
				if ts == nil {
					return "—"
				}
				return z.when(*ts)
			},
			"minute": func(z *uiZone, ts time.Time) string { return z.minute(ts) },
			"iso":    func(ts time.Time) string { return ts.UTC().Format(time.RFC3339Nano) },
			"count":  formatCount,
			"int64":  func(n int) int64 { return int64(n) },
			"facetLists": func(f *uiFacets) []uiFacetList {
				return []uiFacetList{{"actors", "Actors", f.Actors}, {"actions", "Event types", f.Actions}, {"targets", "Target types", f.TargetTypes}}
			},
			"plural":  plural,
			"changes": changeSummary,
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
			p.Zone = utcZone
			if p.Session != nil {
				p.CSRF = p.Session.csrf()
				if p.Session.zone != nil { // not yet read on a page not found
					p.Zone = p.Session.zone
				}
			}
			p.Now, p.Here = s.Now(), "/ui/"
			if r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/ui/") {
				p.Here = r.URL.RequestURI()
				p.AskZone = p.Session != nil && p.Zone.Person == "" && !p.Zone.Fixed
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
		{"GET", "/ui/events/{id}/newer", false, s.uiEventStep(true)},
		{"GET", "/ui/events/{id}/older", false, s.uiEventStep(false)},
		{"GET", "/ui/exports", false, s.uiExports},
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
		{"POST", "/ui/zone", false, s.uiSetZone},
		{"GET", "/ui/live", false, s.uiLive},
		{"POST", "/ui/views", false, s.uiSaveView},
		{"POST", "/ui/views/{id}/delete", false, s.uiDeleteView},
		{"GET", "/ui/suggest", false, s.uiSuggest},
		{"GET", "/ui/facets", false, s.uiFacets},
		{"GET", "/ui/top", false, s.uiTop},
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
				s.signedOut(w, r, rt)
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
			if u.zone, err = pageZone(r, u.PortalSession); err != nil {
				u.zone = utcZone
				s.renderMessage(w, r, u, http.StatusBadRequest, "Unknown time zone", err.Error())
				return
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

// ReturnCookie holds the page a signed-out browser asked for, so that the
// next portal link opened in it (one without a return_to of its own)
// comes back to that page: a shared or bookmarked view survives signing
// in. It is SameSite=Lax, since that link is followed from the
// application's site, and lasts an hour.
const ReturnCookie = "trail_return"

// scriptRoutes answer a page's script, not a person: never a page to come
// back to.
var scriptRoutes = map[string]bool{"/ui/live": true, "/ui/suggest": true, "/ui/facets": true}

// signedOut answers a request without a session: a page says how to get
// in and that Trail will come back to it; the page's own script gets 401.
func (s *Server) signedOut(w http.ResponseWriter, r *http.Request, rt uiRoute) {
	text := "Your session has ended or this browser has none. Open the audit log again from your application: it gives you a new link."
	if rt.method == http.MethodGet && !scriptRoutes[rt.pattern] && trail.ReturnToProblem(r.URL.RequestURI()) == "" {
		http.SetCookie(w, &http.Cookie{Name: ReturnCookie, Value: url.QueryEscape(r.URL.RequestURI()), Path: "/portal/", MaxAge: 3600,
			HttpOnly: true, Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode})
		text = "Your session has ended or this browser has none. To see this page, open the audit log again from your application " +
			"(its Audit log link gives you a new link), in this browser, within the hour: Trail then brings you back here, to the same view."
	}
	s.render(w, r, http.StatusUnauthorized, "message", &uiPage{Title: "You are signed out", Data: uiMessage{"You are signed out", text}})
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
	Q, Action, Actor, TargetType, TargetID string // Actor and TargetID: the API's actor_ids and target_ids
	// ActorRef and TargetRef are what a person typed in the Actor and
	// Target fields (actor=, target=): a name or an ID, resolved by
	// resolveRefs.
	ActorRef, TargetRef string
	From, To            string // datetime-local values in the page's zone, or dates
	Zone                string // tz=: the zone of a shared view
	Range               string // a preset, when From and To are empty
	Before, After       string // page cursors
	// Undo is the date range a histogram bar zoomed in from, as the
	// query string of its range, from, to (and undo) parameters.
	Undo string
}

// maxUndo bounds an undo parameter: zooms nest their undo, and past this
// the oldest are forgotten.
const maxUndo = 1024

func parseUIFilter(q url.Values) uiFilter {
	g := func(n string) string { return strings.TrimSpace(q.Get(n)) }
	f := uiFilter{Q: g("q"), Action: g("actions"), Actor: g("actor_ids"), TargetType: g("targets"), TargetID: g("target_ids"),
		ActorRef: g("actor"), TargetRef: g("target"),
		From: g("from"), To: g("to"), Range: g("range"), Before: g("before"), After: g("after"), Zone: g("tz"), Undo: g("undo")}
	if len(f.Undo) > maxUndo {
		f.Undo = ""
	}
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
	set("actor", f.ActorRef)
	set("actor_ids", f.Actor)
	set("targets", f.TargetType)
	set("target", f.TargetRef)
	set("target_ids", f.TargetID)
	set("from", f.From)
	set("to", f.To)
	set("tz", f.Zone)
	set("undo", f.Undo)
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
	delete(out, "undo")
	if f.Range != "" {
		out["range"] = f.Range
	}
	return out
}

// formDate shows a From or Until value as people type it: a space, not
// a T, between the date and the time.
func formDate(v string) string {
	if len(v) == 16 || len(v) == 19 {
		return strings.Replace(v, "T", " ", 1)
	}
	return v
}

// URL is the audit log page of the filter, without a page cursor.
func (f uiFilter) URL() string { return pageURL("/ui/", f.values(false)) }

func pageURL(base string, v url.Values) string {
	if len(v) == 0 {
		return base
	}
	return base + "?" + v.Encode()
}

// eventFilter turns the page's filter into the store's, checked as the
// API checks its parameters.
func (s *Server) eventFilter(ctx context.Context, u *uiSession, f uiFilter) (trail.EventFilter, [2]time.Time, error) {
	start, end, hist, err := f.period(s.Now(), u.org.RetentionDays, u.zone)
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
			names := map[string]string{"actions": "Event type", "actor_ids": "Actor ID", "targets": "Target type", "target_ids": "Target ID",
				"q": "Search", "before": "Page", "after": "Page", "range_end": "Until"}
			label := names[te.Problems[0].Path]
			if label == "" {
				label = te.Problems[0].Path
			}
			return ef, hist, fmt.Errorf("%s: %s", label, te.Problems[0].Message)
		}
		return ef, hist, err
	}
	if err := s.resolveRefs(ctx, &ef, f); err != nil {
		return ef, hist, err
	}
	return ef, hist, nil
}

type uiPreset struct {
	Label, URL string
	Title      string // a preset's name in full, for screen readers
	Current    bool
}

type uiEventsData struct {
	F        uiFilter
	Presets  []uiPreset
	Actions  []string
	Events   []*trail.Event
	Rows     []uiRow
	Newer    string // page URLs
	Older    string
	Newest   string
	Hist     *uiHistogram
	Query    template.URL // "?" and the filter's query string, for links that keep it
	RangeAll string       // the page with the same filters over all time
	Chips    []uiPreset
	// Invalid: a filter is wrong (the page says which); FilterCount is
	// how many of the folded filters are set.
	Invalid            bool
	ErrField           string // the id of the field the error is about
	FilterCount        int
	FromValue, ToValue string
	// Moves of the date range: a period earlier or later, twice as long,
	// and back to where a histogram bar zoomed in from.
	Earlier, Later, ZoomOut, Undo string
	// Poll: where the page's script asks how many events arrived since
	// it loaded (the first page only).
	Poll string
	// Views are the organization's saved views; ViewQuery is this one's,
	// to save it, and ViewName its name when it is one of them.
	Views               []uiView
	ViewQuery, ViewName string
}

// uiLive answers the audit log page's script: how many events of the
// page's filter arrived after its newest (the before cursor), up to a
// page's worth, as {"count": N, "more": bool}.
func (s *Server) uiLive(w http.ResponseWriter, r *http.Request, u *uiSession) {
	w.Header().Set("Cache-Control", "no-store")
	f := parseUIFilter(r.URL.Query())
	f.After = ""
	ef, _, err := s.eventFilter(r.Context(), u, f)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": err.Error()})
		return
	}
	res, err := s.Events.FindEvents(r.Context(), ef)
	if err != nil {
		if trail.ErrorCode(err) == trail.EINVALID {
			writeJSON(w, http.StatusBadRequest, map[string]any{"message": "This page of the log no longer exists."})
			return
		}
		s.Logger.Error("ui: live", "err", err, "request_id", r.Context().Value(requestIDKey))
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "Trail could not count new events."})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"count": len(res.Events), "more": res.HasMore})
}

func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request, u *uiSession) {
	f := parseUIFilter(r.URL.Query())
	// A form sends its empty fields too: send the browser to the short
	// URL of the same view, which is the one to bookmark or share.
	if clean := f.values(true); r.URL.RawQuery != "" && !maps.EqualFunc(clean, r.URL.Query(), slices.Equal) {
		http.Redirect(w, r, pageURL("/ui/", f.values(true)), http.StatusSeeOther)
		return
	}
	d := &uiEventsData{F: f, FromValue: formDate(f.From), ToValue: formDate(f.To)}
	for _, v := range []string{f.Action, f.ActorRef, f.Actor, f.TargetType, f.TargetRef, f.TargetID, f.From, f.To} {
		if v != "" {
			d.FilterCount++
		}
	}
	if q := f.values(false).Encode(); q != "" {
		d.Query = template.URL("?" + q) // url.Values.Encode escapes every value
	}
	for _, p := range uiPresets {
		g := f
		g.From, g.To, g.Range, g.Before, g.After = "", "", p.Key, "", ""
		d.Presets = append(d.Presets, uiPreset{Label: p.Label, Title: p.Title, URL: g.URL(), Current: f.Range == p.Key})
		if p.Key == "all" {
			d.RangeAll = g.URL()
		}
	}
	d.Chips = filterChips(f)
	d.ViewQuery = viewQuery(f)
	// The page's reads run at once: the suggestions and saved views, the
	// list and the histogram. The page waits for the slowest, not their sum.
	var wg sync.WaitGroup
	var views []*trail.SavedView
	var viewsErr error
	wg.Go(func() {
		d.Actions = s.actionSuggestions(r, u)
		views, viewsErr = s.Portal.FindViews(r.Context(), u.OrganizationID)
	})
	ef, hist, filterErr := s.eventFilter(r.Context(), u, f)
	var res *trail.EventPage
	var listErr error
	var listTime, histTime time.Duration
	if filterErr == nil {
		d.Earlier, d.Later, d.ZoomOut, d.Undo = f.moves(hist, s.Now(), u.zone)
		hf := ef
		hf.Before, hf.After = nil, nil
		wg.Go(func() {
			t1 := time.Now()
			d.Hist = s.histogram(r, hf, hist, f, u.zone)
			histTime = time.Since(t1)
		})
		t0 := time.Now()
		res, listErr = s.Events.FindEvents(r.Context(), ef)
		listTime = time.Since(t0)
	}
	wg.Wait()
	if viewsErr != nil {
		s.uiFail(w, r, u, viewsErr)
		return
	}
	d.setViews(views)
	page := &uiPage{Title: pageTitle(f, d.Chips), Nav: "log", Session: u, Data: d}
	if d.ViewName != "" {
		page.Title = d.ViewName + " · " + page.Title
	}
	if err := filterErr; err != nil {
		page.Error, d.Invalid, d.ErrField, d.Hist = err.Error(), true, errField(err.Error()), nil
		s.render(w, r, http.StatusBadRequest, "events", page)
		return
	}
	if err := listErr; err != nil {
		d.Hist = nil
		if trail.ErrorCode(err) == trail.EINVALID {
			page.Error = "This page of the log no longer exists (retention may have removed it): start again from the newest events."
			d.Newest = f.URL()
			s.render(w, r, http.StatusBadRequest, "events", page)
			return
		}
		s.uiFail(w, r, u, err)
		return
	}
	d.Events, d.Rows = res.Events, eventRows(res.Events, f, u.zone)
	if f.Before == "" && f.After == "" {
		live := f
		if len(res.Events) > 0 {
			live.Before = EncodeEventCursor(res.Events[0].Index)
		}
		d.Poll = pageURL("/ui/live", live.values(true))
	}
	page.Results = len(d.Rows) > 0
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
	// The two reads of the page, for the browser's developer tools and
	// trail bench.
	w.Header().Set("Server-Timing", fmt.Sprintf("list;dur=%.1f, histogram;dur=%.1f",
		float64(listTime.Microseconds())/1000, float64(histTime.Microseconds())/1000))
	s.render(w, r, http.StatusOK, "events", page)
}

// setViews lists the organization's saved views, marking the one this
// page is.
func (d *uiEventsData) setViews(views []*trail.SavedView) {
	for _, v := range views {
		// The query, read and encoded again, is only parameters.
		view := uiView{ID: v.ID, Name: v.Name, URL: template.URL(pageURL("/ui/", mustQuery(v.Query))), Current: v.Query == d.ViewQuery}
		if view.Current {
			d.ViewName = v.Name
		}
		d.Views = append(d.Views, view)
	}
}

// errField is the id of the field a filter's error names ("" if none).
func errField(msg string) string {
	field := ""
	for label, id := range map[string]string{"From": "from", "Until": "to", "Event type": "actions", "Actor": "actor",
		"Target type": "target-type", "Target": "target", "Search": "q"} {
		if strings.HasPrefix(msg, label+":") || (id == "to" && strings.HasPrefix(msg, "Until must")) {
			field = id
		}
	}
	return field
}

// pageTitle names the view: "Audit log", or its filters and date range
// ("Event type: user.* · Last week · Audit log"), for tabs, bookmarks and
// history.
func pageTitle(f uiFilter, chips []uiPreset) string {
	var parts []string
	for _, c := range chips {
		parts = append(parts, c.Label)
	}
	if f.Range != "" && f.Range != defaultRange {
		for _, p := range uiPresets {
			if p.Key == f.Range {
				parts = append(parts, p.Title)
			}
		}
	}
	return strings.Join(append(parts, "Audit log"), " · ")
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
	add("Actor", f.ActorRef, func(g *uiFilter) { g.ActorRef = "" })
	add("Actor ID", f.Actor, func(g *uiFilter) { g.Actor = "" })
	add("Target type", f.TargetType, func(g *uiFilter) { g.TargetType = "" })
	add("Target", f.TargetRef, func(g *uiFilter) { g.TargetRef = "" })
	add("Target ID", f.TargetID, func(g *uiFilter) { g.TargetID = "" })
	add("From", formDate(f.From), func(g *uiFilter) { g.From = ""; g.fixRange() })
	add("Until", formDate(f.To), func(g *uiFilter) { g.To = ""; g.fixRange() })
	add("Time zone", f.Zone, func(g *uiFilter) { g.Zone = "" })
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
		trail.ActionStreamReplayed, trail.ActionRetentionUpdated, trail.ActionAPIKeyCreated, trail.ActionAPIKeyRevoked,
		trail.ActionViewCreated, trail.ActionViewDeleted} {
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
	BarsSVG     template.HTML // barsSVG of Bars
}

type uiBar struct {
	X, Y, W, H float64
	Count      int64
	Label, URL string
}

// barsSVG writes the histogram's bars as SVG elements: here rather than
// by the template, whose escaping of eight values a bar, for up to 90
// bars, cost a page more than its reads (trail bench, 10 M events). Every
// string is escaped here; a link is written only to a page of the UI.
func barsSVG(bars []uiBar) template.HTML {
	var b strings.Builder
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for _, bar := range bars {
		label, x, w := html.EscapeString(bar.Label), num(bar.X), num(bar.W)
		hit := `<rect x="` + x + `" y="0" width="` + w + `" height="100" fill="transparent"></rect>`
		if strings.HasPrefix(bar.URL, "/ui/") {
			b.WriteString(`<a href="` + html.EscapeString(bar.URL) + `" aria-label="` + label + `" tabindex="-1"><title>` + label + `</title>` +
				`<rect class="bar" x="` + x + `" y="` + num(bar.Y) + `" width="` + w + `" height="` + num(bar.H) + `"></rect>` + hit + `</a>`)
		} else {
			b.WriteString(`<g><title>` + label + `</title>` + hit + `</g>`)
		}
	}
	return template.HTML(b.String())
}

// HistogramTimeout bounds the count behind the histogram: past it, the
// page shows the events and says the range is too large to chart.
var HistogramTimeout = 5 * time.Second

func (s *Server) histogram(r *http.Request, f trail.EventFilter, period [2]time.Time, uf uiFilter, z *uiZone) *uiHistogram {
	h := &uiHistogram{Start: period[0], End: period[1]}
	counter, ok := s.Events.(trail.EventCounter)
	if !ok {
		h.Error = "This storage cannot chart activity."
		return h
	}
	width := pickWidth(period[1].Sub(period[0]))
	h.BucketLabel = width.label
	f.RangeStart, f.RangeEnd = &period[0], &period[1]
	ctx, cancel := context.WithTimeout(r.Context(), HistogramTimeout)
	defer cancel()
	grid := width.grid(period[1].Sub(period[0]))
	counts, err := counter.CountEvents(ctx, f, grid)
	if err != nil {
		if ctx.Err() != nil {
			h.Error = "Too many events to chart in this range quickly: narrow the dates or add a filter."
		} else {
			s.Logger.Error("ui: histogram", "err", err, "request_id", r.Context().Value(requestIDKey))
			h.Error = "The activity chart could not be loaded."
		}
		return h
	}
	// The counts are of epoch-aligned grid buckets; each lies within one
	// bar (the bars' edges are on the grid).
	edges := width.edges(period[0], period[1], z, grid)
	bars := make([]int64, len(edges)-1)
	g0 := period[0].Truncate(grid)
	for i, c := range counts {
		t := g0.Add(time.Duration(i) * grid)
		j, _ := slices.BinarySearchFunc(edges, t, func(e, t time.Time) int { return e.Compare(t) })
		if j == len(edges) || !edges[j].Equal(t) {
			j--
		}
		bars[min(max(j, 0), len(bars)-1)] += c
	}
	for _, c := range bars {
		h.Total += c
		h.Max = max(h.Max, c)
	}
	h.Width = len(bars) * 10
	for i, c := range bars {
		from, to := edges[i], edges[i+1]
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
		bar := uiBar{X: float64(i*10) + 1, Y: 100 - bh, W: 8, H: bh, Count: c,
			Label: fmt.Sprintf("%s from %s to %s", plural(c, "event"), z.minute(from), z.minute(to))}
		if c > 0 {
			zoom := uf
			zoom.From, zoom.To, zoom.Range, zoom.Before, zoom.After = z.formValue(from), z.formValue(to), "", "", ""
			zoom.Undo = uf.rangeQuery()
			bar.URL = zoom.URL()
		}
		h.Bars = append(h.Bars, bar)
	}
	h.BarsSVG = barsSVG(h.Bars)
	h.Summary = fmt.Sprintf("Activity chart: %s from %s to %s, one bar per %s, at most %s in one bar.",
		plural(h.Total, "event"), z.minute(period[0]), z.minute(period[1]), width.label, formatCount(h.Max))
	return h
}

// plural is a count and its noun: "1 event", "12,000 events".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return formatCount(n) + " " + noun + "s"
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
