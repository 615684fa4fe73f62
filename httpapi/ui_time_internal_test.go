package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
)

func zoneOf(t *testing.T, name, locale string) *uiZone {
	t.Helper()
	r := httptest.NewRequest("GET", "/ui/", nil)
	z, err := pageZone(r, &trail.PortalSession{User: trail.PortalUser{TimeZone: name, Locale: locale}})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestZone_PresetsAreTheZonesDays: today, yesterday and the weeks are the
// viewer's calendar days, and a week starts on Sunday in en-US and on
// Monday in fr-FR.
func TestZone_PresetsAreTheZonesDays(t *testing.T) {
	// Tuesday 2026-12-08 03:00 UTC is Monday 2026-12-07 19:00 in Los Angeles.
	now := mustTime(t, "2026-12-08T03:00:00Z")
	for _, c := range []struct {
		zone, locale, key, start, end string
		now                           string // "" for now
	}{
		{"America/Los_Angeles", "en-US", "today", "2026-12-07T08:00:00Z", "2026-12-08T08:00:00Z", ""},
		{"America/Los_Angeles", "en-US", "yesterday", "2026-12-06T08:00:00Z", "2026-12-07T08:00:00Z", ""},
		{"America/Los_Angeles", "en-US", "this_week", "2026-12-06T08:00:00Z", "2026-12-13T08:00:00Z", ""}, // Sunday the 6th
		{"America/Los_Angeles", "fr-FR", "this_week", "2026-12-07T08:00:00Z", "2026-12-14T08:00:00Z", ""}, // Monday the 7th
		{"America/Los_Angeles", "en-US", "last_week", "2026-11-29T08:00:00Z", "2026-12-06T08:00:00Z", ""},
		{"UTC", "", "today", "2026-12-08T00:00:00Z", "2026-12-09T00:00:00Z", ""},
		{"Asia/Kolkata", "en-IN", "yesterday", "2026-12-06T18:30:00Z", "2026-12-07T18:30:00Z", ""},
		// The week of the clocks going back in Los Angeles (Sunday 1
		// November 2026) is 169 hours long.
		{"America/Los_Angeles", "en-US", "this_week", "2026-11-01T07:00:00Z", "2026-11-08T08:00:00Z", "2026-11-03T12:00:00Z"},
	} {
		n := now
		if c.now != "" {
			n = mustTime(t, c.now)
		}
		f := uiFilter{Range: c.key}
		start, end, _, err := f.period(n, 30, zoneOf(t, c.zone, c.locale))
		if err != nil {
			t.Fatal(err)
		}
		if got := start.Format(time.RFC3339) + " " + end.Format(time.RFC3339); got != c.start+" "+c.end {
			t.Errorf("%s %s %s: %s, want %s %s", c.zone, c.locale, c.key, got, c.start, c.end)
		}
	}
}

// TestZone_TypedDates: From and Until are read in the shown zone; a date
// alone in Until includes its day; RFC 3339 keeps its own offset.
func TestZone_TypedDates(t *testing.T) {
	z := zoneOf(t, "America/Los_Angeles", "en-US")
	now := mustTime(t, "2026-12-08T03:00:00Z")
	for _, c := range []struct{ from, to, start, end string }{
		{"2026-12-01", "2026-12-01", "2026-12-01T08:00:00Z", "2026-12-02T08:00:00Z"},
		{"2026-12-01 09:30", "2026-12-01T17:00", "2026-12-01T17:30:00Z", "2026-12-02T01:00:00Z"},
		{"2026-12-01T09:30:15", "2026-12-01T10:00:00Z", "2026-12-01T17:30:15Z", "2026-12-01T10:00:00Z"},
	} {
		f := uiFilter{From: c.from, To: c.to}
		start, end, _, err := f.period(now, 30, z)
		if c.end < c.start { // Until before From is refused
			if err == nil {
				t.Errorf("%s..%s: no error", c.from, c.to)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if got := start.Format(time.RFC3339) + " " + end.Format(time.RFC3339); got != c.start+" "+c.end {
			t.Errorf("%s..%s: %s, want %s %s", c.from, c.to, got, c.start, c.end)
		}
	}
}

// TestZone_HistogramEdges: day bars start at the zone's midnights (23 and
// 25 hour days included), moved back to the UTC hour in a zone half an
// hour off; bars of an hour or less are on the epoch.
func TestZone_HistogramEdges(t *testing.T) {
	day := histogramWidths[7]
	if day.unit != "day" {
		t.Fatalf("width 7 is %v", day)
	}
	la := zoneOf(t, "America/Los_Angeles", "en-US")
	// 31 October to 3 November 2026: the clocks go back on 1 November.
	edges := day.edges(mustTime(t, "2026-10-31T07:00:00Z"), mustTime(t, "2026-11-03T08:00:00Z"), la, time.Hour)
	var got []string
	for _, e := range edges {
		got = append(got, e.UTC().Format(time.RFC3339))
	}
	want := []string{"2026-10-31T07:00:00Z", "2026-11-01T07:00:00Z", "2026-11-02T08:00:00Z", "2026-11-03T08:00:00Z"}
	if len(got) != len(want) {
		t.Fatalf("edges %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("edges %v, want %v", got, want)
		}
	}
	if d := edges[2].Sub(edges[1]); d != 25*time.Hour {
		t.Errorf("the day the clocks go back is %v", d)
	}
	in := zoneOf(t, "Asia/Kolkata", "en-IN")
	edges = day.edges(mustTime(t, "2026-12-01T18:30:00Z"), mustTime(t, "2026-12-03T18:30:00Z"), in, time.Hour)
	if s := edges[0].In(in.Loc).Format("15:04"); s != "23:30" || edges[1].Sub(edges[0]) != 24*time.Hour {
		t.Errorf("India's day bars start at %s, %v", s, edges)
	}
	quarter := histogramWidths[2]
	edges = quarter.edges(mustTime(t, "2026-12-01T10:07:00Z"), mustTime(t, "2026-12-01T11:00:00Z"), in, quarter.grid(time.Hour))
	if edges[0] != mustTime(t, "2026-12-01T10:00:00Z") || len(edges) != 5 {
		t.Errorf("15-minute edges %v", edges)
	}
}

// TestZone_Shown: times carry the offset they had then; a bad tz= is an
// error naming the parameter.
func TestZone_Shown(t *testing.T) {
	z := zoneOf(t, "America/Los_Angeles", "")
	if got := z.when(mustTime(t, "2026-07-01T12:00:00Z")); got != "2026-07-01 05:00:00 −07:00" {
		t.Errorf("summer: %q", got)
	}
	if got := z.when(mustTime(t, "2026-12-01T12:00:00Z")); got != "2026-12-01 04:00:00 −08:00" {
		t.Errorf("winter: %q", got)
	}
	if got := utcZone.when(mustTime(t, "2026-12-01T12:00:00Z")); got != "2026-12-01 12:00:00 UTC" {
		t.Errorf("UTC: %q", got)
	}
	// The hour repeated when the clocks go back is written with its offset.
	if got := z.formValue(mustTime(t, "2026-11-01T09:30:00Z")); got != "2026-11-01T01:30:00-08:00" {
		t.Errorf("ambiguous: %q", got)
	}
	r := httptest.NewRequest("GET", "/ui/?tz=Mars/Olympus", nil)
	if _, err := pageZone(r, &trail.PortalSession{}); err == nil {
		t.Error("tz=Mars/Olympus accepted")
	}
	r = httptest.NewRequest("GET", "/ui/?tz=Europe/Paris", nil)
	if z, err := pageZone(r, &trail.PortalSession{User: trail.PortalUser{TimeZone: "America/Los_Angeles"}, ShowUTC: true}); err != nil || z.Name != "Europe/Paris" || !z.Fixed {
		t.Errorf("tz=Europe/Paris: %+v %v", z, err)
	}
}

// TestZone_Moves: Earlier, Later and Zoom out move the page's period in
// the page's zone; none passes now; Undo comes back from a zoom, nested,
// and forgets the oldest zooms past maxUndo.
func TestZone_Moves(t *testing.T) {
	z := zoneOf(t, "America/Los_Angeles", "en-US")
	now := mustTime(t, "2026-12-04T18:00:30Z")
	f := uiFilter{Range: "today", Action: "user.*"}
	_, _, period, err := f.period(now, 90, z)
	if err != nil {
		t.Fatal(err)
	}
	earlier, later, out, undo := f.moves(period, now, z)
	if earlier != "/ui/?actions=user.%2A&from=2026-12-03&to=2026-12-03" || later != "" || undo != "" {
		t.Errorf("today: earlier %q, later %q, undo %q", earlier, later, undo)
	}
	// Twice the day: yesterday and today, not past today.
	if out != "/ui/?actions=user.%2A&from=2026-12-03&to=2026-12-04" {
		t.Errorf("zoom out of today: %q", out)
	}
	g := uiFilter{From: "2026-11-01", To: "2026-11-01"} // 25 hours: clocks go back
	_, _, period, _ = g.period(now, 90, z)
	earlier, later, _, _ = g.moves(period, now, z)
	if earlier != "/ui/?from=2026-10-31&to=2026-10-31" || later != "/ui/?from=2026-11-02&to=2026-11-02" {
		t.Errorf("around the 25-hour day: %q, %q", earlier, later)
	}
	if e, l, o, _ := (uiFilter{Range: "all"}).moves(period, now, z); e != "" || l != "" || o != "" {
		t.Errorf("all time moves: %q %q %q", e, l, o)
	}
	zoomed := uiFilter{From: "2026-12-01T00:00", To: "2026-12-01T01:00", Undo: uiFilter{Range: "7d"}.rangeQuery()}
	if _, _, _, u := zoomed.moves(period, now, z); u != "/ui/?range=7d" {
		t.Errorf("undo of a zoom from 7 days: %q", u)
	}
	twice := uiFilter{From: "2026-12-01T00:00", To: "2026-12-01T00:05", Undo: zoomed.rangeQuery()}
	if _, _, _, u := twice.moves(period, now, z); u != "/ui/?from=2026-12-01T00%3A00&to=2026-12-01T01%3A00&undo=range%3D7d" {
		t.Errorf("undo of a second zoom: %q", u)
	}
	long := uiFilter{From: "2026-12-01", Undo: strings.Repeat("x", maxUndo)}
	if q := long.rangeQuery(); q != "from=2026-12-01" {
		t.Errorf("an undo past %d bytes is kept: %d bytes", maxUndo, len(q))
	}
}
