package httpapi

import (
	"bytes"
	"cmp"
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/trail-audit/trail"
)

// Facets: the top actors, event types and target types of the current
// filter, each a link that narrows the view to it. They are counted from
// the newest events of the filter, page by page, for at most facetBudget
// or facetMax events: when the filter holds more, the counts are lower
// bounds and read "N+" (the counts of the newest facetMax events, or of
// those read in the time). An event counts once for each target type it
// names.
const (
	facetBudget = 300 * time.Millisecond
	facetMax    = 5000
	facetPage   = 500
	facetTop    = 5
)

type uiFacet struct {
	Label, Title, URL string
	Count             int
}

type uiFacetList struct {
	ID, Name string
	Items    []uiFacet
}

type uiFacets struct {
	Actors, Actions, TargetTypes []uiFacet
	// Scanned is how many events were counted; Exact, whether they are
	// all the filter holds.
	Scanned int
	Exact   bool
	More    string // the full page of the counts (without the script)
}

// facets counts the top values of the filter's events.
func (s *Server) facets(ctx context.Context, ef trail.EventFilter, f uiFilter) (*uiFacets, error) {
	type tally struct {
		label, title string
		n            int
		set          func(g *uiFilter)
	}
	actors, actions, types := map[string]*tally{}, map[string]*tally{}, map[string]*tally{}
	bump := func(m map[string]*tally, key, label, title string, set func(g *uiFilter)) {
		t := m[key]
		if t == nil {
			t = &tally{label: label, title: title, set: set}
			m[key] = t
		}
		t.n++
	}
	out := &uiFacets{}
	deadline := time.Now().Add(facetBudget)
	ef.Limit, ef.Before, ef.After, ef.Ascending = min(facetPage, cmp.Or(s.FacetLimit, facetPage)), nil, nil, false
	for {
		res, err := s.Events.FindEvents(ctx, ef)
		if err != nil {
			return nil, err
		}
		for _, ev := range res.Events {
			id, action := ev.Actor.ID, ev.Action
			bump(actors, id, orID(ev.Actor.Name, id), ev.Actor.Type+" "+id, func(g *uiFilter) { g.ActorRef = id })
			bump(actions, action, action, "", func(g *uiFilter) { g.Action = action })
			seen := map[string]bool{}
			for _, t := range ev.Targets {
				if typ := t.Type; !seen[typ] {
					seen[typ] = true
					bump(types, typ, typ, "", func(g *uiFilter) { g.TargetType = typ })
				}
			}
		}
		out.Scanned += len(res.Events)
		if !res.HasMore || len(res.Events) == 0 {
			out.Exact = true
			break
		}
		if limit := cmp.Or(s.FacetLimit, facetMax); out.Scanned >= limit || time.Now().After(deadline) {
			break
		}
		last := res.Events[len(res.Events)-1].Index
		ef.After = &last
	}
	top := func(m map[string]*tally) []uiFacet {
		list := make([]*tally, 0, len(m))
		for _, t := range m {
			list = append(list, t)
		}
		slices.SortFunc(list, func(a, b *tally) int { return cmp.Or(b.n-a.n, cmp.Compare(a.label, b.label)) })
		var fs []uiFacet
		for _, t := range list[:min(len(list), facetTop)] {
			g := f
			g.Before, g.After = "", ""
			t.set(&g)
			fs = append(fs, uiFacet{Label: t.label, Title: t.title, URL: g.URL(), Count: t.n})
		}
		return fs
	}
	out.Actors, out.Actions, out.TargetTypes = top(actors), top(actions), top(types)
	return out, nil
}

// uiFacets is the counts for the audit log page's script: an HTML
// fragment that it puts in the page when the reader opens them.
func (s *Server) uiFacets(w http.ResponseWriter, r *http.Request, u *uiSession) {
	s.facetsPage(w, r, u, true)
}

// uiTop is the counts as a page of their own, for a browser without the
// script.
func (s *Server) uiTop(w http.ResponseWriter, r *http.Request, u *uiSession) {
	s.facetsPage(w, r, u, false)
}

func (s *Server) facetsPage(w http.ResponseWriter, r *http.Request, u *uiSession, fragment bool) {
	f := parseUIFilter(r.URL.Query())
	f.Before, f.After = "", ""
	ef, _, err := s.eventFilter(r.Context(), u, f)
	if err != nil {
		if fragment {
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.renderMessage(w, r, u, http.StatusBadRequest, "Filter not valid", err.Error())
		return
	}
	fc, err := s.facets(r.Context(), ef, f)
	if err != nil {
		if fragment {
			s.Logger.Error("ui: facets", "err", err, "request_id", r.Context().Value(requestIDKey))
			w.Header().Set("Cache-Control", "no-store")
			http.Error(w, "Trail could not count these events.", http.StatusServiceUnavailable)
			return
		}
		s.uiFail(w, r, u, err)
		return
	}
	fc.More = f.URL()
	if !fragment {
		s.render(w, r, http.StatusOK, "top", &uiPage{Title: "Top actors and types · " + pageTitle(f, filterChips(f)), Nav: "log", Session: u, Data: fc})
		return
	}
	t, err := s.templates()
	var buf bytes.Buffer
	if err == nil {
		err = t.pages["top"].ExecuteTemplate(&buf, "facets", fc)
	}
	if err != nil {
		s.Logger.Error("ui: facets", "err", err, "request_id", r.Context().Value(requestIDKey))
		http.Error(w, "Trail could not show the counts.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	w.Write(buf.Bytes())
}
