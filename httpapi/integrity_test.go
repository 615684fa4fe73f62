package httpapi_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
)

// TestCreateEvent_Numbers: every accepted number is stored in the form its
// leaf hash covers, and a number the leaf hash cannot hold exactly is
// refused naming its field (SPEC §3, issue 16 point 3).
func TestCreateEvent_Numbers(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_numbers")

		t.Run("OKCanonical", func(t *testing.T) {
			ev := validEvent()
			ev["metadata"] = map[string]any{
				"a": json.Number("1.0"), "b": json.Number("1e2"), "c": json.Number("-0.0"), "d": json.Number("0.10"),
				"e": json.Number("9007199254740991"), "f": json.Number("-9007199254740991"), "g": json.Number("1E-7"),
				"h": json.Number("123456789.123456789123"),
			}
			ev["actor"].(map[string]any)["metadata"] = map[string]any{"n": json.Number("2.50")}
			r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev})
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			got := ts.do(t, "GET", "/audit_logs/events/"+r.JSON(t)["id"].(string), adminSecret, nil)
			for _, want := range []string{`"a":1,`, `"b":100,`, `"c":0,`, `"d":0.1,`, `"e":9007199254740991,`, `"f":-9007199254740991,`, `"g":1e-7,`, `"h":123456789.12345679}`, `"n":2.5}`} {
				if !bytes.Contains(got.Body, []byte(want)) {
					t.Errorf("stored event lacks %s: %s", want, got.Body)
				}
			}
		})

		for _, tt := range []struct {
			name, path string
			mutate     func(ev map[string]any)
		}{
			{"2^53+1", "/metadata/n", func(ev map[string]any) { ev["metadata"] = map[string]any{"n": json.Number("9007199254740993")} }},
			{"2^53", "/metadata/n", func(ev map[string]any) { ev["metadata"] = map[string]any{"n": json.Number("9007199254740992")} }},
			{"-2^53", "/metadata/n", func(ev map[string]any) { ev["metadata"] = map[string]any{"n": json.Number("-9007199254740992")} }},
			{"Exponent", "/actor/metadata/n", func(ev map[string]any) {
				ev["actor"].(map[string]any)["metadata"] = map[string]any{"n": json.Number("1e300")}
			}},
			{"Target", "/targets/0/metadata/big", func(ev map[string]any) {
				ev["targets"] = []any{map[string]any{"id": "a", "type": "x", "metadata": map[string]any{"big": json.Number("12345678901234567890")}}}
			}},
		} {
			t.Run("ErrUnsafe"+tt.name, func(t *testing.T) {
				before := ts.count(t, org)
				ev := validEvent()
				tt.mutate(ev)
				r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev})
				if r.Status != 400 || r.JSON(t)["code"] != trail.EINVALIDEVENT {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				if paths := problemPaths(t, r.JSON(t)); !slices.Contains(paths, tt.path) {
					t.Fatalf("errors %v do not name %s", paths, tt.path)
				}
				if !strings.Contains(string(r.Body), "as a string") {
					t.Fatalf("the message does not suggest a string: %s", r.Body)
				}
				if ts.count(t, org) != before {
					t.Fatal("a refused event was stored")
				}
			})
		}
	})
}

// TestCreateEvent_Text: invalid UTF-8 and lone surrogates, which a JSON
// decoder would store as U+FFFD, are refused naming the field (issue 16
// point 4), in single and batch requests; a valid surrogate pair and a
// U+FFFD that was sent are kept.
func TestCreateEvent_Text(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_text")
		// body returns a request whose event has field set to the raw
		// JSON string text (quotes included).
		body := func(actorName, location, mdKey, mdValue string) string {
			return `{"organization_id":"` + org + `","event":{"action":"user.signed_in","occurred_at":"` + validEvent()["occurred_at"].(string) +
				`","actor":{"id":"u_1","type":"user","name":` + actorName + `},"targets":[{"id":"t","type":"team"}],` +
				`"context":{"location":` + location + `},"metadata":{` + mdKey + `:` + mdValue + `}}}`
		}

		t.Run("OK", func(t *testing.T) {
			r := ts.do(t, "POST", "/audit_logs/events", adminSecret, body(`"Ann \ud83d\ude00"`, `"\ufffd literal `+"\xef\xbf\xbd"+`"`, `"k"`, `"é \u00e9"`))
			if r.Status != 200 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			got := ts.do(t, "GET", "/audit_logs/events/"+r.JSON(t)["id"].(string), adminSecret, nil).JSON(t)
			if name := got["actor"].(map[string]any)["name"]; name != "Ann 😀" {
				t.Fatalf("name %q", name)
			}
		})

		for _, tt := range []struct {
			name, body, path string
		}{
			{"InvalidByte", body(`"Ann `+"\xff"+`"`, `"x"`, `"k"`, `"v"`), "/actor/name"},
			{"TruncatedRune", body(`"Ann"`, `"Paris `+"\xc3"+`"`, `"k"`, `"v"`), "/context/location"},
			{"EncodedSurrogate", body(`"Ann"`, `"x"`, `"k"`, `"`+"\xed\xa0\x80"+`"`), "/metadata/k"},
			{"LoneHigh", body(`"Ann \ud800"`, `"x"`, `"k"`, `"v"`), "/actor/name"},
			{"LoneLow", body(`"Ann"`, `"x"`, `"k"`, `"a\udc00b"`), "/metadata/k"},
			{"HighThenText", body(`"Ann"`, `"\ud83dx"`, `"k"`, `"v"`), "/context/location"},
			{"TwoHighs", body(`"Ann"`, `"x"`, `"k"`, `"\ud83d\ud83d"`), "/metadata/k"},
			{"InKey", body(`"Ann"`, `"x"`, `"k\ud800"`, `"v"`), "/metadata/k\ufffd"},
		} {
			t.Run("Err"+tt.name, func(t *testing.T) {
				before := ts.count(t, org)
				r := ts.do(t, "POST", "/audit_logs/events", adminSecret, tt.body)
				if r.Status != 400 || r.JSON(t)["code"] != trail.EINVALIDEVENT {
					t.Fatalf("status %d: %s", r.Status, r.Body)
				}
				if paths := problemPaths(t, r.JSON(t)); !slices.Contains(paths, tt.path) {
					t.Fatalf("errors %v do not name %s", paths, tt.path)
				}
				if !strings.Contains(string(r.Body), "UTF-8") {
					t.Fatalf("message: %s", r.Body)
				}
				// The same event in a batch is refused on its own.
				batch := strings.Replace(tt.body, `"event":`, `"events":[`, 1)
				batch = batch[:len(batch)-1] + `]}`
				br := ts.do(t, "POST", "/audit_logs/events/batch", adminSecret, batch)
				if br.Status != 200 || !strings.Contains(string(br.Body), trail.EINVALIDEVENT) {
					t.Fatalf("batch: status %d: %s", br.Status, br.Body)
				}
				if ts.count(t, org) != before {
					t.Fatal("a refused event was stored")
				}
			})
		}
	})
}

// TestCreateEvent_ReservedActions: the actions of Trail's own events that
// purge evidence rests on are refused from clients, so that no client's
// event is taken for Trail's.
func TestCreateEvent_ReservedActions(t *testing.T) {
	forEachDriver(t, func(t *testing.T, newTestServer serverFunc) {
		t.Parallel()
		ts := newTestServer(t)
		org := ts.mustOrg(t, "org_reserved")
		for _, action := range []string{trail.ActionEventsPurged, trail.ActionRetentionUpdated, trail.ActionPurgeLegacy, trail.ActionPurgeEvidence} {
			ev := validEvent()
			ev["action"] = action
			r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev})
			if r.Status != 400 || !slices.Contains(problemPaths(t, r.JSON(t)), "/action") || !strings.Contains(string(r.Body), "reserved") {
				t.Fatalf("%s: %d %s", action, r.Status, r.Body)
			}
		}
		ev := validEvent()
		ev["action"] = "audit_log_events.viewed"
		if r := ts.do(t, "POST", "/audit_logs/events", adminSecret, map[string]any{"organization_id": org, "event": ev}); r.Status != 200 {
			t.Fatalf("an action of the same prefix: %d %s", r.Status, r.Body)
		}
	})
}
