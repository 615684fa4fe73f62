package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"testing"
	"time"

	"github.com/trail-audit/trail"
)

func TestEscapeCell(t *testing.T) {
	for in, want := range map[string]string{
		"":         "",
		"plain":    "plain",
		"=1+2":     "'=1+2",
		"+33 1":    "'+33 1",
		"-5":       "'-5",
		"@SUM(A1)": "'@SUM(A1)",
		"\tx":      "'\tx",
		"\rx":      "'\rx",
		// The first non-blank character counts (issue 16, point 10d).
		" =1+1":        "' =1+1",
		"\t=cmd":       "'\t=cmd",
		"  @SUM(A1)":   "'  @SUM(A1)",
		"\u00a0+1":     "'\u00a0+1",
		"\n-2":         "'\n-2",
		"\r\n=1":       "'\r\n=1",
		"\u200b=1":     "'\u200b=1",
		"\ufeff@x":     "'\ufeff@x",
		"\u3000=1":     "'\u3000=1",
		"\x01=1":       "'\x01=1",
		" \t":          " \t", // blank only: no formula follows
		"-":            "'-",
		"=":            "'=",
		"\uff1d1+1":    "'\uff1d1+1",
		"   ":          "   ",
		" a=b":         " a=b",
		" 日本":          " 日本",
		"\xff=1":       "\xff=1", // invalid UTF-8 is no blank
		"a=b":          "a=b",
		"'already":     "'already",
		"日本=":          "日本=",
		"=HYPERLINK()": "'=HYPERLINK()",
	} {
		if got := EscapeCell(in); got != want {
			t.Errorf("EscapeCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCSVRow: a stored event, encoded as Trail stores it, becomes the row
// SPEC §8 describes, read back with a real CSV parser.
func TestCSVRow(t *testing.T) {
	ev := &trail.Event{
		ID: "01J0000000000000000000000A", OrganizationID: "org_1", Index: 7, Action: "-a.b", Version: 2,
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC), ReceivedAt: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
		Actor:   trail.Actor{ID: "u1", Type: "user", Name: "Ada, \"the\" Countess", Metadata: trail.Metadata{"x": "y"}},
		Targets: []trail.Target{{ID: "t1", Type: "doc", Name: "A;B"}, {ID: "t2", Type: "team", Name: "=evil()"}},
		Context: trail.EventContext{Location: "=cmd", UserAgent: "line\nbreak\rcr"},
		Metadata: trail.Metadata{"html": "<b>&</b>", "quote": "say \"hi\"\\", "ctl": "a\u0001b", "n": json.Number("1.50"), "ok": false,
			"u": "Zoë 🎉 \u2028"},
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	c := newCSVRows()
	if err := c.appendEvent(string(raw)); err != nil {
		t.Fatal(err)
	}
	// No metadata: an empty cell.
	ev.Metadata = nil
	raw2, _ := json.Marshal(ev)
	if err := c.appendEvent(string(raw2)); err != nil {
		t.Fatal(err)
	}
	out, err := c.take()
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"01J0000000000000000000000A", "7", "2026-01-02T03:04:05.0000006Z", "2026-01-02T03:04:06Z", "'-a.b", "2", "user", "u1",
		"Ada, \"the\" Countess", "doc;team", "t1;t2", "A;B;'=evil()", "'=cmd", "line\nbreak\rcr"}
	for i, w := range want {
		if recs[0][i] != w {
			t.Errorf("cell %s = %q, want %q", Columns[i], recs[0][i], w)
		}
	}
	var md map[string]any
	dec := json.NewDecoder(bytes.NewReader([]byte(recs[0][14])))
	dec.UseNumber()
	if err := dec.Decode(&md); err != nil {
		t.Fatalf("metadata cell %q: %v", recs[0][14], err)
	}
	if md["html"] != "<b>&</b>" || md["quote"] != "say \"hi\"\\" || md["ctl"] != "a\u0001b" || md["n"] != json.Number("1.50") || md["ok"] != false || md["u"] != "Zoë 🎉 \u2028" {
		t.Errorf("metadata %v", md)
	}
	if bytes.Contains([]byte(recs[0][14]), []byte(`\u003c`)) {
		t.Errorf("metadata keeps HTML escapes: %s", recs[0][14])
	}
	if recs[1][14] != "" {
		t.Errorf("no metadata: %q", recs[1][14])
	}
}
