package importer_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/trail-audit/trail/importer"
)

func readAll(t *testing.T, text string, format importer.Format) (importer.Format, []*importer.Record) {
	t.Helper()
	rd, err := importer.Open(strings.NewReader(text), format)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*importer.Record
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			return rd.Format, recs
		}
		if err != nil {
			t.Fatal(err)
		}
		rec.Decode()
		recs = append(recs, rec)
	}
}

func event(t *testing.T, rec *importer.Record) map[string]any {
	t.Helper()
	if rec.Err != nil || rec.Skip != "" {
		t.Fatalf("line %d: err %v, skip %q", rec.Line, rec.Err, rec.Skip)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Event, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWorkOSCSV(t *testing.T) {
	// Target groups numbered from 0 and with a gap, columns in any order;
	// a quoted cell spans two lines.
	text := "metadata,target_type_2,target_id_2,action,occurred_at,actor_type,actor_id,target_id_0,target_type_0,context_location,id\n" +
		`"{""note"":` + "\n" + `""two lines""}",team,team_1,team.updated,2026-11-01T00:00:00Z,user,user_1,user_2,user,192.0.2.1,ev_1` + "\n" +
		`,,,team.deleted,2026-11-02T00:00:00Z,user,user_1,,,192.0.2.1,` + "\n" +
		`"{bad",,,x.y,2026-11-02T00:00:00Z,user,user_1,,,192.0.2.1,ev_3` + "\n"
	format, recs := readAll(t, text, "")
	if format != importer.WorkOSCSV || len(recs) != 3 {
		t.Fatalf("format %s, %d records", format, len(recs))
	}
	ev := event(t, recs[0])
	targets := ev["targets"].([]any)
	if recs[0].Key != "workos:ev_1" || recs[0].Line != 2 || len(targets) != 2 ||
		targets[0].(map[string]any)["id"] != "user_2" || targets[1].(map[string]any)["id"] != "team_1" ||
		ev["metadata"].(map[string]any)["note"] != "two lines" {
		t.Fatalf("first record: key %q line %d %v", recs[0].Key, recs[0].Line, ev)
	}
	if ev2 := event(t, recs[1]); recs[1].Key != "" || recs[1].Line != 4 || len(ev2["targets"].([]any)) != 0 {
		t.Fatalf("second record: key %q line %d %v", recs[1].Key, recs[1].Line, ev2)
	}
	if recs[2].Err == nil || !strings.Contains(recs[2].Err.Error(), "metadata") || recs[2].Line != 5 {
		t.Fatalf("bad metadata: line %d %v", recs[2].Line, recs[2].Err)
	}
}

func TestTrailCSV(t *testing.T) {
	// As Trail exports: guarded cells, targets joined with ';'.
	text := "id,index,occurred_at,received_at,action,version,actor_type,actor_id,actor_name,target_types,target_ids,target_names,location,user_agent,metadata\n" +
		`ev_1,1,2026-11-01T00:00:00Z,2026-11-01T00:00:01Z,user.updated,1,user,user_1,'=cmd(),user;team,u_2;'-t,Bob;,'@here,ua,"{""a"":1}"` + "\n" +
		`ev_2,2,2026-11-01T00:00:00Z,2026-11-01T00:00:01Z,audit_log_events.purged,1,system,trail,,,,,local,,` + "\n" +
		`ev_3,3,2026-11-01T00:00:00Z,2026-11-01T00:00:01Z,a.b,1,user,user_1,,user,u_1;u_2,,local,,` + "\n"
	format, recs := readAll(t, text, "")
	if format != importer.TrailCSV || len(recs) != 3 {
		t.Fatalf("format %s, %d records", format, len(recs))
	}
	ev := event(t, recs[0])
	actor, targets := ev["actor"].(map[string]any), ev["targets"].([]any)
	if recs[0].Key != "trail:ev_1" || actor["name"] != "=cmd()" || len(targets) != 2 || targets[1].(map[string]any)["id"] != "-t" ||
		targets[0].(map[string]any)["name"] != "Bob" || targets[1].(map[string]any)["name"] != nil ||
		ev["context"].(map[string]any)["location"] != "@here" || ev["metadata"].(map[string]any)["a"] != float64(1) {
		t.Fatalf("first record: %v", ev)
	}
	if recs[1].Skip == "" {
		t.Fatalf("Trail's own purge record is imported: %+v", recs[1])
	}
	if recs[2].Err == nil {
		t.Fatal("two target ids and one type: no error")
	}
}

func TestNDJSON(t *testing.T) {
	text := "\ufeff" + `{"action":"a.b","occurred_at":"2026-11-01T00:00:00Z","actor":{"id":"u","type":"user"},"targets":[],"context":{"location":"l"},"object":"audit_log_event","id":"x"}` + "\n\n" +
		`{"organization_id":"org_x","event":{"action":"a.c","occurred_at":"2026-11-01T00:00:00Z","actor":{"id":"u","type":"user"},"targets":[],"context":{"location":"l"}}}` + "\n" +
		`{"id":"evt_1","organization_id":"o","index":3,"received_at":"2026-11-01T00:00:00Z","occurred_at":"2026-11-01T00:00:00Z","purged":true}` + "\n" +
		`{"id":"evt_2","organization_id":"o","index":4,"received_at":"2026-11-01T00:00:00Z","action":"a.d","occurred_at":"2026-11-01T00:00:00Z","actor":{"id":"u","type":"user"},"targets":[],"context":{"location":"l"},"proof":{}}` + "\n" +
		`[1,2]` + "\n"
	format, recs := readAll(t, text, "")
	if format != importer.NDJSON || len(recs) != 5 {
		t.Fatalf("format %s, %d records", format, len(recs))
	}
	if ev := event(t, recs[0]); recs[0].Key != "workos:x" || ev["object"] != nil || ev["id"] != nil || ev["action"] != "a.b" {
		t.Fatalf("bare event: key %q %v", recs[0].Key, ev)
	}
	if ev := event(t, recs[1]); recs[1].Line != 3 || recs[1].Key != "" || ev["action"] != "a.c" || ev["organization_id"] != nil {
		t.Fatalf("API body: line %d key %q %v", recs[1].Line, recs[1].Key, ev)
	}
	if recs[2].Skip == "" || recs[2].Key != "trail:evt_1" {
		t.Fatalf("a purged event: %+v", recs[2])
	}
	if ev := event(t, recs[3]); recs[3].Key != "trail:evt_2" || ev["proof"] != nil || ev["index"] != nil || ev["action"] != "a.d" {
		t.Fatalf("a stored event: key %q %v", recs[3].Key, ev)
	}
	if recs[4].Err == nil || recs[4].Line != 6 {
		t.Fatalf("not an object: %+v", recs[4])
	}
}

func TestOpen_Unknown(t *testing.T) {
	if _, err := importer.Open(strings.NewReader("a,b,c\n1,2,3\n"), ""); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Fatalf("an unknown CSV: %v", err)
	}
	if _, err := importer.Open(strings.NewReader("{}"), "xml"); err == nil {
		t.Fatal("format xml accepted")
	}
}
