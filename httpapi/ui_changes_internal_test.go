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
