package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/trail-audit/trail"
)

// uiZone is the time zone a page shows its times in and reads its dates
// in: the tz= parameter of a shared view, else UTC when the session chose
// it, else the zone its portal link named, else UTC.
type uiZone struct {
	Loc *time.Location
	// Name is the zone's IANA name; Person, the zone of the session's
	// person ("" when the link named none).
	Name, Person string
	// Fixed: the URL's tz= set it. UTC: the session chose UTC over the
	// person's zone.
	Fixed, UTC bool
	// Browser: Person is the browser's zone (ZoneCookie), not the link's.
	Browser   bool
	weekStart time.Weekday
}

// ZoneCookie holds the browser's time zone, which the UI's script sets
// (Intl's IANA name); it is used only when a session's link named none.
const ZoneCookie = "trail_zone"

// utcZone is the zone of pages without a session.
var utcZone = &uiZone{Loc: time.UTC, Name: "UTC"}

// pageZone is the zone of a signed-in request (uiZone), or an error
// naming the tz= parameter when it is not a zone.
func pageZone(r *http.Request, sess *trail.PortalSession) (*uiZone, error) {
	z := &uiZone{Loc: time.UTC, Name: "UTC", Person: sess.User.TimeZone, UTC: sess.ShowUTC, weekStart: weekStart(sess.User.Locale)}
	// A link that named no zone: the browser's, which the page's script
	// keeps in a cookie.
	if c, err := r.Cookie(ZoneCookie); err == nil && z.Person == "" && c.Value != "UTC" {
		if _, err := loadZone(c.Value); err == nil {
			z.Person, z.Browser = c.Value, true
		}
	}
	name := z.Person
	if sess.ShowUTC {
		name = ""
	}
	// A page's URL, or a form of a view (the export's) that carries it.
	if tz := strings.TrimSpace(r.FormValue("tz")); tz != "" {
		if _, err := loadZone(tz); err != nil {
			return z, uiInputError("Time zone (tz): " + err.Error())
		}
		name, z.Fixed = tz, true
	}
	if name == "" {
		return z, nil
	}
	loc, err := loadZone(name)
	if err != nil { // checked when the link was made; tzdata may differ
		return z, nil
	}
	z.Loc, z.Name = loc, name
	return z, nil
}

// zones caches the zones pages were shown in: time.LoadLocation reads
// and parses a zoneinfo file on each call. Only names that
// trail.TimeZoneProblem accepts are kept, so it holds at most the zone
// database's few hundred.
var zones sync.Map // name → *time.Location

// loadZone is the zone of an IANA name, or an error saying why the name
// is not one.
func loadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	if msg := trail.TimeZoneProblem(name); msg != "" {
		return nil, errors.New(msg)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, loc)
	return loc, nil
}

// IsUTC reports whether the zone is UTC.
func (z *uiZone) IsUTC() bool { return z.Name == "UTC" || z.Name == "Etc/UTC" }

// Offset is the zone's offset at t, as "UTC" or "UTC−08:00".
func (z *uiZone) Offset(t time.Time) string {
	if z.IsUTC() {
		return "UTC"
	}
	return "UTC" + strings.Replace(t.In(z.Loc).Format("-07:00"), "-", "−", 1)
}

// Label names the zone for headings: "America/Los_Angeles, UTC−08:00 now".
func (z *uiZone) Label(now time.Time) string {
	if z.IsUTC() {
		return "UTC"
	}
	return z.Name + ", " + z.Offset(now)
}

// when is a time as the page shows it: its date and time in the zone and
// the offset it had then ("2026-12-04 09:15:02 −08:00").
func (z *uiZone) when(t time.Time) string {
	if z.IsUTC() {
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	}
	lt := t.In(z.Loc)
	return lt.Format("2006-01-02 15:04:05 ") + strings.Replace(lt.Format("-07:00"), "-", "−", 1)
}

// minute is a time to the minute, for ranges and bars.
func (z *uiZone) minute(t time.Time) string {
	if z.IsUTC() {
		return t.UTC().Format("2006-01-02 15:04") + " UTC"
	}
	lt := t.In(z.Loc)
	return lt.Format("2006-01-02 15:04 ") + strings.Replace(lt.Format("-07:00"), "-", "−", 1)
}

// formValue writes t for a From or Until field: the zone's wall clock to
// the minute, or with its offset where the wall clock is ambiguous (the
// hour repeated when clocks go back) or not whole minutes.
func (z *uiZone) formValue(t time.Time) string {
	lt := t.In(z.Loc)
	v := lt.Format("2006-01-02T15:04")
	if back, err := time.ParseInLocation("2006-01-02T15:04", v, z.Loc); err != nil || !back.Equal(t) {
		return lt.Format(time.RFC3339)
	}
	return v
}

// sundayFirst are the regions whose calendars start the week on Sunday
// (CLDR's firstDay "sun", the most populous of them); elsewhere the week
// starts on Monday (ISO 8601).
var sundayFirst = map[string]bool{"US": true, "CA": true, "MX": true, "BR": true, "JP": true, "KR": true, "TW": true, "HK": true,
	"IL": true, "IN": true, "PH": true, "ZA": true, "SA": true, "CO": true, "PE": true, "VE": true, "GT": true}

// weekStart is the first day of the week for a BCP 47 locale: Sunday in
// the regions that count so (en-US, ja-JP, pt-BR…), else Monday.
func weekStart(locale string) time.Weekday {
	for _, sub := range strings.Split(locale, "-")[1:] {
		if len(sub) == 2 && sundayFirst[strings.ToUpper(sub)] {
			return time.Sunday
		}
	}
	if locale == "ja" || locale == "he" || locale == "ko" {
		return time.Sunday
	}
	return time.Monday
}

// midnight is the start of t's day in loc (the first instant of the day
// where clocks skip midnight).
func midnight(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// addDays is the start of the day n days after day's (a midnight).
func addDays(day time.Time, n int, loc *time.Location) time.Time {
	y, m, d := day.In(loc).Date()
	return time.Date(y, m, d+n, 0, 0, 0, 0, loc)
}

// uiPresets are the date range presets, in the order shown: calendar
// periods in the page's zone, then spans ending now.
var uiPresets = []struct {
	Key, Label, Title string
	Span              time.Duration
}{
	{"today", "Today", "Today", 0}, {"yesterday", "Yesterday", "Yesterday", 0}, {"this_week", "This week", "This week", 0},
	{"last_week", "Last week", "Last week", 0},
	{"1h", "1 h", "Last hour", time.Hour}, {"24h", "24 h", "Last 24 hours", 24 * time.Hour}, {"7d", "7 d", "Last 7 days", 7 * 24 * time.Hour},
	{"30d", "30 d", "Last 30 days", 30 * 24 * time.Hour}, {"90d", "90 d", "Last 90 days", 90 * 24 * time.Hour}, {"all", "All", "All time", 0},
}

// defaultRange is the preset of a page with no date filter.
const defaultRange = "30d"

// calendarPreset is a preset's period in z at now: [start, end).
func calendarPreset(key string, now time.Time, z *uiZone) (time.Time, time.Time, bool) {
	today := midnight(now, z.Loc)
	back := (int(today.In(z.Loc).Weekday()) - int(z.weekStart) + 7) % 7
	week := addDays(today, -back, z.Loc)
	switch key {
	case "today":
		return today, addDays(today, 1, z.Loc), true
	case "yesterday":
		return addDays(today, -1, z.Loc), today, true
	case "this_week":
		return week, addDays(week, 7, z.Loc), true
	case "last_week":
		return addDays(week, -7, z.Loc), week, true
	}
	return time.Time{}, time.Time{}, false
}

// parseUITime reads a From or Until value in the page's zone: a
// datetime-local value, a date and time with a space, or a date (which is
// the start of that day, or with until the start of the next: a date in
// Until includes its day), or RFC 3339 with its own offset; from 1970 to
// 2261 (what the stored times hold).
func parseUITime(s string, loc *time.Location, until bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(t)
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02 15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return inRange(t)
		}
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		if until {
			t = addDays(t, 1, loc)
		}
		return inRange(t)
	}
	return time.Time{}, errors.New("not a date and time")
}

func inRange(t time.Time) (time.Time, error) {
	if t.Year() < 1970 || t.Year() > 2261 {
		return time.Time{}, errors.New("out of range")
	}
	return t.UTC(), nil
}

// period is the filter's date range in z: start and end (either may be
// unset), for the list; and a closed one, for the histogram.
func (f uiFilter) period(now time.Time, retentionDays int, z *uiZone) (start, end *time.Time, hist [2]time.Time, err error) {
	// Presets end at the next whole minute, so that a page's buckets and
	// zoom links fall on whole minutes.
	end0 := now.UTC().Truncate(time.Minute).Add(time.Minute)
	oldest := end0.Add(-time.Duration(max(retentionDays, 1)) * 24 * time.Hour)
	hist = [2]time.Time{oldest, end0}
	if f.From != "" || f.To != "" {
		for i, v := range []string{f.From, f.To} {
			if v == "" {
				continue
			}
			t, perr := parseUITime(v, z.Loc, i == 1)
			if perr != nil {
				return nil, nil, hist, fmt.Errorf("%s: %q is not a date (YYYY-MM-DD) or a date and time (YYYY-MM-DD HH:MM) from 1970 to 2261, in %s",
					[]string{"From", "Until"}[i], v, z.Name)
			}
			if i == 0 {
				start, hist[0] = &t, t
			} else {
				end, hist[1] = &t, t
			}
		}
		if start != nil && end != nil && !start.Before(*end) {
			return nil, nil, hist, uiInputError("Until must be after From")
		}
		if end != nil && start == nil && !hist[0].Before(hist[1]) {
			hist[0] = hist[1].Add(-24 * time.Hour)
		}
		if start != nil && end == nil && !hist[0].Before(hist[1]) {
			hist[1] = hist[0].Add(24 * time.Hour)
		}
		return start, end, hist, nil
	}
	if s, e, ok := calendarPreset(f.Range, now, z); ok {
		s, e = s.UTC(), e.UTC()
		return &s, &e, [2]time.Time{s, e}, nil
	}
	for _, p := range uiPresets {
		if p.Key == f.Range && p.Span > 0 {
			s := end0.Add(-p.Span)
			return &s, &end0, [2]time.Time{s, end0}, nil
		}
		if p.Key == f.Range {
			return nil, nil, hist, nil
		}
	}
	return nil, nil, hist, uiInputError(fmt.Sprintf("Date range: unknown preset %q", f.Range))
}

// A histogram's bars: widths up to an hour are aligned on the epoch,
// which is on the zone's clock too (every zone's offset is a whole number
// of quarter hours); longer ones start at the zone's hours, midnights,
// weeks, months and years, moved back to the whole UTC hour, since Trail
// counts events by the UTC hour (in a zone half or a quarter of an hour
// off, a day's bar starts at 23:30 or 23:45), or to the UTC midnight for a
// chart of over 416 days. A day or a week with a clock change is 23 or 25
// hours long, and its bar counts them all.
type histWidth struct {
	d     time.Duration // nominal, to pick the width
	label string
	hours int    // for bars of hours: 3, 6 or 12
	unit  string // "", "hour", "day", "week", "month", "year"
}

// histogramWidths are the bucket widths a histogram picks from: the
// smallest that needs at most histogramBars.
var histogramWidths = []histWidth{
	{d: time.Minute, label: "minute"}, {d: 5 * time.Minute, label: "5 minutes"}, {d: 15 * time.Minute, label: "15 minutes"},
	{d: time.Hour, label: "hour"},
	{d: 3 * time.Hour, label: "3 hours", hours: 3, unit: "hour"}, {d: 6 * time.Hour, label: "6 hours", hours: 6, unit: "hour"},
	{d: 12 * time.Hour, label: "12 hours", hours: 12, unit: "hour"},
	{d: 24 * time.Hour, label: "day", unit: "day"}, {d: 7 * 24 * time.Hour, label: "week", unit: "week"},
	{d: 31 * 24 * time.Hour, label: "month", unit: "month"}, {d: 366 * 24 * time.Hour, label: "year", unit: "year"},
}

const histogramBars = 90

// pickWidth is the narrowest width that draws span in histogramBars.
func pickWidth(span time.Duration) histWidth {
	for _, w := range histogramWidths {
		if span <= w.d*histogramBars {
			return w
		}
	}
	return histogramWidths[len(histogramWidths)-1]
}

// grid is the width of the epoch-aligned buckets the events of span are
// counted in before they are summed into bars: the bar's own up to an
// hour; else an hour (the hourly counts), or a UTC day where that would
// take over trail.Buckets' 10,000 buckets (over 416 days).
func (w histWidth) grid(span time.Duration) time.Duration {
	switch {
	case w.unit == "":
		return w.d
	case span <= 10000*time.Hour:
		return time.Hour
	}
	return 24 * time.Hour
}

// edges are the bars' boundaries from the one at or before start to the
// first at or after end: on the epoch for widths up to an hour, else on
// the zone's calendar, each moved back onto the grid.
func (w histWidth) edges(start, end time.Time, z *uiZone, grid time.Duration) []time.Time {
	var t time.Time
	var next func(time.Time) time.Time
	loc := z.Loc
	switch w.unit {
	case "":
		t = start.Truncate(w.d)
		next = func(t time.Time) time.Time { return t.Add(w.d) }
	case "hour":
		lt := start.In(loc)
		t = time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour()/w.hours*w.hours, 0, 0, 0, loc)
		next = func(t time.Time) time.Time {
			lt := t.In(loc)
			n := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour()+w.hours, 0, 0, 0, loc)
			if !n.After(t) { // a clock change: go on by the absolute hours
				n = t.Add(time.Duration(w.hours) * time.Hour)
			}
			return n
		}
	case "day":
		t = midnight(start, loc)
		next = func(t time.Time) time.Time { return addDays(t, 1, loc) }
	case "week":
		t = midnight(start, loc)
		t = addDays(t, -((int(t.In(loc).Weekday()) - int(z.weekStart) + 7) % 7), loc)
		next = func(t time.Time) time.Time { return addDays(t, 7, loc) }
	case "month":
		lt := start.In(loc)
		t = time.Date(lt.Year(), lt.Month(), 1, 0, 0, 0, 0, loc)
		next = func(t time.Time) time.Time {
			lt := t.In(loc)
			return time.Date(lt.Year(), lt.Month()+1, 1, 0, 0, 0, 0, loc)
		}
	default:
		t = time.Date(start.In(loc).Year(), 1, 1, 0, 0, 0, 0, loc)
		next = func(t time.Time) time.Time { return time.Date(t.In(loc).Year()+1, 1, 1, 0, 0, 0, 0, loc) }
	}
	snap := func(t time.Time) time.Time { return t.Truncate(grid) }
	out := []time.Time{snap(t)}
	if out[0].After(start) {
		out[0] = start.Truncate(grid)
	}
	for out[len(out)-1].Before(end) {
		t = next(t)
		if e := snap(t); e.After(out[len(out)-1]) {
			out = append(out, e)
		}
	}
	return out
}

// uiSetZone is the switch between the person's zone and UTC: the session
// remembers it, and the browser goes back to the page it came from.
func (s *Server) uiSetZone(w http.ResponseWriter, r *http.Request, u *uiSession) {
	if err := s.Portal.SetPortalSessionUTC(r.Context(), u.secret, r.PostFormValue("utc") == "1"); err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	redirectBack(w, r)
}

// redirectBack sends the browser to the page a form came from (its back
// field), when that is a page of the UI, else to the audit log.
func redirectBack(w http.ResponseWriter, r *http.Request) {
	back := r.PostFormValue("back")
	if trail.ReturnToProblem(back) != "" {
		back = "/ui/"
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// rangeQuery is the filter's date range as a query string (range, from,
// to and its own undo), for the undo of a zoom; "" when it is too long.
func (f uiFilter) rangeQuery() string {
	v := url.Values{}
	for n, val := range map[string]string{"range": f.Range, "from": f.From, "to": f.To, "undo": f.Undo} {
		if val != "" {
			v.Set(n, val)
		}
	}
	q := v.Encode()
	if len(q) > maxUndo {
		v.Del("undo") // forget the oldest zooms
		q = v.Encode()
	}
	return q
}

// calendarDays is how many of the zone's days period spans, when both
// its ends are the zone's midnights; else 0.
func calendarDays(period [2]time.Time, loc *time.Location) int {
	s, e := period[0].In(loc), period[1].In(loc)
	for _, t := range []time.Time{s, e} {
		if t.Hour() != 0 || t.Minute() != 0 || t.Second() != 0 || t.Nanosecond() != 0 {
			return 0
		}
	}
	day := func(t time.Time) time.Time { y, m, d := t.Date(); return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	return int(day(e).Sub(day(s)) / (24 * time.Hour))
}

// moves are the links that move the page's date range (period, as the
// page shows it): a period earlier, a period later (none past now), twice
// as long around it, and back from a zoom into a histogram bar. A view of
// all time has none but the last.
func (f uiFilter) moves(period [2]time.Time, now time.Time, z *uiZone) (earlier, later, zoomOut, undo string) {
	base := f
	base.Before, base.After, base.Undo = "", "", ""
	at := func(from, to time.Time) string {
		g := base
		g.Range, g.From, g.To = "", z.formValue(from), z.formValue(to)
		return g.URL()
	}
	if f.Undo != "" {
		if q, err := url.ParseQuery(f.Undo); err == nil {
			g := base
			g.Range, g.From, g.To, g.Undo = q.Get("range"), q.Get("from"), q.Get("to"), q.Get("undo")
			if g.From != "" || g.To != "" {
				g.Range = ""
			}
			g.fixRange()
			undo = g.URL()
		}
	}
	if f.Range == "all" || !period[0].Before(period[1]) {
		return "", "", "", undo
	}
	next := now.UTC().Truncate(time.Minute).Add(time.Minute)
	if days := calendarDays(period, z.Loc); days > 0 {
		// Whole days of the zone: move by days, which are 23 or 25
		// hours long when the clocks change, and write them as dates
		// (Until names the last day, which it includes).
		at := func(from, to time.Time) string {
			g := base
			g.Range, g.From, g.To = "", from.Format(time.DateOnly), to.AddDate(0, 0, -1).Format(time.DateOnly)
			return g.URL()
		}
		s, e := period[0].In(z.Loc), period[1].In(z.Loc)
		earlier = at(s.AddDate(0, 0, -days), s)
		if e.Before(now) {
			later = at(e, e.AddDate(0, 0, days))
		}
		to := e.AddDate(0, 0, days/2)
		if to.After(next) {
			y, m, d := now.In(z.Loc).Date()
			to = time.Date(y, m, d+1, 0, 0, 0, 0, z.Loc)
			if e.After(to) {
				to = e
			}
		}
		zoomOut = at(to.AddDate(0, 0, -2*days), to)
		return earlier, later, zoomOut, undo
	}
	d := period[1].Sub(period[0])
	earlier = at(period[0].Add(-d), period[0])
	if period[1].Before(now) {
		later = at(period[1], period[1].Add(d))
	}
	end := period[1].Add(d / 2)
	if end.After(next) {
		end = next
		if period[1].After(end) {
			end = period[1]
		}
	}
	zoomOut = at(end.Add(-2*d), end)
	return earlier, later, zoomOut, undo
}
