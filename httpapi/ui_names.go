package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/trail-audit/trail"
)

// Names in the Actor and Target fields. A person types what they see, a
// name ("Ada Lovelace", "EU responders"), or what a row links to, an ID.
// Both become IDs, so that the list reads the events through the
// organization's actor and target indexes:
//
//   - an ID that an event of the organization names as its actor (or one
//     of its targets) is that ID;
//   - otherwise the text is a name: the search finds the newest events
//     that hold its words, and the actors (targets) among them whose name
//     is the text, ignoring case, are the ones meant (every one of them:
//     two people may share a name);
//   - an actor name the search does not reach is matched as the API's
//     actor_names matches it (exactly); a target name is then unknown,
//     and the field says so.

// refScan is how many of the newest events that the search finds for a
// name are read to resolve it; refMaxIDs bounds the IDs it becomes.
const (
	refScan   = 200
	refMaxIDs = 20
)

// resolveRefs adds to ef the actors and targets that f's Actor and
// Target fields name.
func (s *Server) resolveRefs(ctx context.Context, ef *trail.EventFilter, f uiFilter) error {
	if f.ActorRef != "" {
		ids, err := s.refIDs(ctx, ef.OrganizationID, f.ActorRef, true)
		if err != nil {
			return err
		}
		if len(ids) > 0 {
			ef.ActorIDs = append(ef.ActorIDs, ids...)
		} else {
			ef.ActorNames = append(ef.ActorNames, f.ActorRef)
		}
	}
	if f.TargetRef != "" {
		ids, err := s.refIDs(ctx, ef.OrganizationID, f.TargetRef, false)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return fmt.Errorf("%s: no event of this organization names a target %q (by its name or its ID)", "Target", f.TargetRef)
		}
		ef.TargetIDs = append(ef.TargetIDs, ids...)
	}
	return nil
}

// refIDs returns the IDs of the actors (actor) or targets that ref names.
func (s *Server) refIDs(ctx context.Context, org, ref string, actor bool) ([]string, error) {
	if len(ref) > 512 {
		return nil, fmt.Errorf("%s: at most 512 characters", map[bool]string{true: "Actor", false: "Target"}[actor])
	}
	probe := trail.EventFilter{OrganizationID: org, Limit: 1}
	if actor {
		probe.ActorIDs = []string{ref}
	} else {
		probe.TargetIDs = []string{ref}
	}
	res, err := s.Events.FindEvents(ctx, probe)
	if err != nil {
		return nil, err
	}
	if len(res.Events) > 0 {
		return []string{ref}, nil
	}
	res, err = s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org, Query: ref, Limit: refScan})
	if err != nil {
		if trail.ErrorCode(err) == trail.EINVALID {
			return nil, nil // not searchable words: no name matches
		}
		return nil, err
	}
	var ids []string
	seen := map[string]bool{}
	add := func(name, id string) {
		if strings.EqualFold(strings.TrimSpace(name), ref) && !seen[id] && len(ids) < refMaxIDs {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, ev := range res.Events {
		if actor {
			add(ev.Actor.Name, ev.Actor.ID)
			continue
		}
		for _, t := range ev.Targets {
			add(t.Name, t.ID)
		}
	}
	return ids, nil
}

// Suggestions for the Actor and Target fields: the organization's actors
// (targets) of its newest suggestScan events, the most frequent first,
// each as the name to type (its ID when it has none) and a label saying
// what it is. The page's script asks once, when the field is first used,
// and the browser filters them as the person types.
const (
	suggestScan = 1000
	suggestMax  = 50
)

type uiSuggestion struct {
	Value string `json:"value"`
	Label string `json:"label"`
	n     int
}

func (s *Server) uiSuggest(w http.ResponseWriter, r *http.Request, u *uiSession) {
	w.Header().Set("Cache-Control", "private, max-age=60")
	field := r.URL.Query().Get("field")
	if field != "actor" && field != "target" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "field must be actor or target"})
		return
	}
	byID := map[string]*uiSuggestion{}
	order := []*uiSuggestion{}
	add := func(id, typ, name string) {
		if x := byID[id]; x != nil {
			x.n++
			return
		}
		x := &uiSuggestion{Value: orID(name, id), Label: typ + " · " + id, n: 1}
		byID[id] = x
		order = append(order, x)
	}
	ef := trail.EventFilter{OrganizationID: u.OrganizationID, Limit: suggestScan}
	res, err := s.Events.FindEvents(r.Context(), ef)
	if err != nil {
		s.Logger.Error("ui: suggest", "err", err, "request_id", r.Context().Value(requestIDKey))
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "Trail could not read the suggestions."})
		return
	}
	for _, ev := range res.Events {
		if field == "actor" {
			add(ev.Actor.ID, ev.Actor.Type, ev.Actor.Name)
			continue
		}
		for _, t := range ev.Targets {
			add(t.ID, t.Type, t.Name)
		}
	}
	slices.SortStableFunc(order, func(a, b *uiSuggestion) int { return b.n - a.n })
	writeJSON(w, http.StatusOK, map[string]any{"values": order[:min(len(order), suggestMax)]})
}
