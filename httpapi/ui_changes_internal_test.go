package httpapi

import (
	"encoding/json"
	"testing"

	"github.com/trail-audit/trail"
)

// TestMetadataChanges: before_/after_, old_/new_ and previous_X/X pair
// up into the fields an event changed; the rest stays metadata; the list
// shows the changed fields on one line.
func TestMetadataChanges(t *testing.T) {
	md := trail.Metadata{
		"before_priority": "P2", "after_priority": "P1",
		"old_name": "EU responders", "new_name": "EU responders",
		"previous_behaviour": "sync", "behaviour": "skip",
		"before_count": json.Number("3"), "after_count": json.Number("4"),
		"before_orphan": "x", // no after: plain metadata
		"ticket":        "TCK-1",
	}
	changes, rest := metadataChanges(md)
	want := []uiChange{
		{"behaviour", "sync", "skip", true},
		{"count", "3", "4", true},
		{"name", "EU responders", "EU responders", false},
		{"priority", "P2", "P1", true},
	}
	if len(changes) != len(want) {
		t.Fatalf("changes %+v", changes)
	}
	for i := range want {
		if changes[i] != want[i] {
			t.Errorf("change %d: %+v, want %+v", i, changes[i], want[i])
		}
	}
	if len(rest) != 2 || rest[0] != (uiKV{"before_orphan", "x"}) || rest[1] != (uiKV{"ticket", "TCK-1"}) {
		t.Errorf("rest %+v", rest)
	}
	if got := changeSummary(md); got != "behaviour: sync → skip; count: 3 → 4; priority: P2 → P1" {
		t.Errorf("summary %q", got)
	}
	if got := changeSummary(trail.Metadata{"before_x": "", "after_x": "on"}); got != "x: — → on" {
		t.Errorf("summary of an empty before %q", got)
	}
}

// TestActionWords: a row's sentence reads the action as a verb and the
// kind of thing, and names the target of that kind.
func TestActionWords(t *testing.T) {
	for action, want := range map[string][2]string{
		"escalation_path.updated":     {"updated", "escalation path"},
		"user.role_granted":           {"granted role", "user"},
		"log_stream.created":          {"created", "log stream"},
		"catalog.entry.attribute_set": {"attribute set", "catalog entry"},
		"login":                       {"login", ""},
	} {
		if v, o := actionWords(action); v != want[0] || o != want[1] {
			t.Errorf("%s: %q %q, want %q %q", action, v, o, want[0], want[1])
		}
	}
	ev := &trail.Event{Action: "escalation_path.updated", Actor: trail.Actor{ID: "user_1", Type: "user", Name: "Ada Lovelace"},
		Targets: []trail.Target{{Type: "team", ID: "team_1", Name: "SRE"}, {Type: "escalation_path", ID: "ep_1", Name: "EU responders"}}}
	rows := eventRows([]*trail.Event{ev}, uiFilter{Range: "7d", Before: "x", Zone: "Europe/Paris"}, utcZone)
	r := rows[0]
	if r.Actor+" "+r.Verb+" "+r.Object+" "+r.Target != "Ada Lovelace updated escalation path EU responders" {
		t.Errorf("sentence %q %q %q %q", r.Actor, r.Verb, r.Object, r.Target)
	}
	if r.TargetURL != "/ui/?range=7d&target=ep_1&tz=Europe%2FParis" || r.ActorURL != "/ui/?actor=user_1&range=7d&tz=Europe%2FParis" {
		t.Errorf("filter links %q %q", r.TargetURL, r.ActorURL)
	}
	if r.Open != "/ui/events/"+ev.ID+"?before=x&range=7d&tz=Europe%2FParis" {
		t.Errorf("open %q", r.Open)
	}
}
