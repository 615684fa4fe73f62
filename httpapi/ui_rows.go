package httpapi

import (
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// uiRow is an event as a row of the list: a sentence made of its actor,
// action and first target, with links that filter by each, and the link
// that opens it.
type uiRow struct {
	*trail.Event
	Actor, ActorURL   string // the actor's name (or id), events of the actor
	Verb, Object      string // "updated", "escalation path"
	Target, TargetURL string // the target's name (or id), events of the target
	ActionURL         string // events of this type
	Open              string // the event's page, keeping the list's place
	Changes           string // changeSummary
	// When is the time in the page's zone, ISO in RFC 3339 (UTC), and
	// OpenLabel the open link's accessible name: made once here rather
	// than by the template's functions, which cost a page of 50 rows
	// more than its reads (trail bench, 10 M events).
	When, ISO, OpenLabel string
}

// eventRows makes the list's rows. Each filter link keeps the view's
// dates and zone and starts from the newest page.
func eventRows(events []*trail.Event, f uiFilter, z *uiZone) []uiRow {
	rows := make([]uiRow, len(events))
	base := f
	base.Before, base.After = "", ""
	place := pageURL("", f.values(true))
	for i, ev := range events {
		r := uiRow{Event: ev, Actor: orID(ev.Actor.Name, ev.Actor.ID), Changes: changeSummary(ev.Metadata)}
		r.Verb, r.Object = actionWords(ev.Action)
		g := base
		g.Actor, g.ActorRef = "", ev.Actor.ID
		r.ActorURL = g.URL()
		g = base
		g.Action = ev.Action
		r.ActionURL = g.URL()
		if t := firstTarget(ev, ev.Action); t != nil {
			r.Target = orID(t.Name, t.ID)
			g = base
			g.TargetID, g.TargetRef = "", t.ID
			r.TargetURL = g.URL()
		}
		r.Open = "/ui/events/" + ev.ID + place
		r.When, r.ISO = z.when(ev.OccurredAt), ev.OccurredAt.UTC().Format(time.RFC3339Nano)
		r.OpenLabel = "Open the event of " + r.When + ": " + r.Actor + " " + r.Verb + " " + r.Object + " " + r.Target
		rows[i] = r
	}
	return rows
}

func orID(name, id string) string {
	if strings.TrimSpace(name) != "" {
		return name
	}
	return id
}

// actionWords reads an action as a verb and the kind of thing it acts on:
// "escalation_path.updated" is ("updated", "escalation path"), and
// "user.role_granted" ("granted role", "user"): a verb after a noun comes
// first. An action without a dot is all verb.
func actionWords(action string) (verb, object string) {
	object, verb, ok := strings.Cut(action, ".")
	if !ok {
		return strings.ReplaceAll(action, "_", " "), ""
	}
	// Dots deeper than one are more of the object: "a.b.created".
	if i := strings.LastIndexByte(verb, '.'); i >= 0 {
		object, verb = object+" "+verb[:i], verb[i+1:]
	}
	words := strings.Split(verb, "_")
	if n := len(words); n > 1 && strings.HasSuffix(words[n-1], "ed") {
		words = append([]string{words[n-1]}, words[:n-1]...)
	}
	return strings.Join(words, " "), strings.NewReplacer("_", " ", ".", " ").Replace(object)
}

// firstTarget is the target the sentence names: the first of the
// action's own kind, else the first.
func firstTarget(ev *trail.Event, action string) *trail.Target {
	if len(ev.Targets) == 0 {
		return nil
	}
	kind, _, _ := strings.Cut(action, ".")
	for i := range ev.Targets {
		if ev.Targets[i].Type == kind {
			return &ev.Targets[i]
		}
	}
	return &ev.Targets[0]
}
