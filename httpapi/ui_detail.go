package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/tlog"
)

// --- one event ---

type uiEventData struct {
	Event *trail.Event
	Back  string // the log with the filters the event was opened from
	// Newer and Older lead to the events above and below it in that
	// list ("" where a step found the list's end: see uiEventStep).
	Newer, Older string
	Raw          string // the stored JSON, indented
	Metadata     []uiKV
	Changes      []uiChange // what the event changed (metadataChanges)
	ActorMD      []uiKV
	Verify       uiVerification
	ID           string
}

type uiKV struct{ Key, Value string }

// uiVerification is an event's verification status: checked here as
// `trail verify --subset` checks it, against the latest checkpoint.
type uiVerification struct {
	State      string // verified, pending, failed
	Detail     string
	TreeSize   int64
	KeyName    string
	Checkpoint string
}

func sortedKV(md trail.Metadata) []uiKV {
	out := make([]uiKV, 0, len(md))
	for k, v := range md {
		out = append(out, uiKV{k, metadataText(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// uiFindEvent reads the event of the path's {id} in the session's
// organization (another's is not found); when it cannot, it shows why
// and returns nil.
func (s *Server) uiFindEvent(w http.ResponseWriter, r *http.Request, u *uiSession) *trail.Event {
	ev, err := s.Events.FindEventByID(r.Context(), u.OrganizationID, r.PathValue("id"))
	if err != nil {
		s.uiFail(w, r, u, err)
		return nil
	}
	return ev
}

func (s *Server) uiEvent(w http.ResponseWriter, r *http.Request, u *uiSession) {
	ev := s.uiFindEvent(w, r, u)
	if ev == nil {
		return
	}
	id := ev.ID
	// Back is the list's page the event was opened from, at its row.
	place := pageURL("", parseUIFilter(r.URL.Query()).values(true))
	d := &uiEventData{Event: ev, Back: "/ui/" + place + "#ev-" + url.PathEscape(id), ID: id, ActorMD: sortedKV(ev.Actor.Metadata)}
	// The neighbours are found when asked for (uiEventStep): reading
	// both with every page cost it 1-2 ms of its 1-2 ms at 10 M events.
	end := r.URL.Query().Get("end")
	if end != "newer" {
		d.Newer = "/ui/events/" + url.PathEscape(id) + "/newer" + place
	}
	if end != "older" {
		d.Older = "/ui/events/" + url.PathEscape(id) + "/older" + place
	}
	d.Changes, d.Metadata = metadataChanges(ev.Metadata)
	if !ev.Purged {
		var pretty bytes.Buffer
		if json.Indent(&pretty, []byte(ev.Raw), "", "  ") == nil {
			d.Raw = pretty.String()
		} else {
			b, _ := json.MarshalIndent(ev, "", "  ")
			d.Raw = string(b)
		}
	}
	d.Verify = s.verifyEvent(r, ev)
	s.render(w, r, http.StatusOK, "event", &uiPage{Title: ev.Action + " · event", Nav: "log", Session: u, Data: d})
}

// eventLine is the event with its proof, as GET /audit_logs/events/{id}
// returns it: one line for trail verify --subset.
func eventLine(ev *trail.Event, proof *eventProof) ([]byte, error) {
	if ev.Purged {
		return json.Marshal(purgedEvent{ID: ev.ID, Index: ev.Index, Purged: true, LeafHash: ev.PurgedLeafHash, Proof: proof})
	}
	return json.Marshal(eventWithProof{Event: ev, Proof: proof})
}

func (s *Server) verifyEvent(r *http.Request, ev *trail.Event) uiVerification {
	v := uiVerification{KeyName: strings.SplitN(s.Proofs.VerifierKey(), "+", 2)[0]}
	proof, err := s.proveEvent(r, ev)
	if err != nil {
		s.Logger.Error("ui: prove event", "err", err, "request_id", r.Context().Value(requestIDKey))
		v.State, v.Detail = "unverified", "The proof could not be loaded: try again in a moment."
		return v
	}
	if proof == nil {
		v.State, v.Detail = "pending", "No signed checkpoint covers this event yet: checkpoints are signed about every second. Reload the page in a moment."
		return v
	}
	v.TreeSize, v.Checkpoint = proof.TreeSize, proof.Checkpoint
	line, err := eventLine(ev, proof)
	if err == nil {
		_, err = tlog.VerifyOptions{Key: s.Proofs.VerifierKey(), Checkpoint: []byte(proof.Checkpoint), Subset: true}.Verify(bytes.NewReader(line))
	}
	if err != nil {
		v.State, v.Detail = "failed", "Verification failed: "+err.Error()
		return v
	}
	v.State = "verified"
	v.Detail = "This event's contents hash to a leaf that the inclusion proof places at index " + strconv.FormatInt(ev.Index, 10) +
		" of the tree of the latest signed checkpoint (" + formatCount(proof.TreeSize) + " events), and the checkpoint's signature checks with the log's verifier key."
	if ev.Purged {
		v.Detail = "Retention removed this event's contents; its leaf hash, kept in the tree, is included in the latest signed checkpoint (" +
			formatCount(proof.TreeSize) + " events)."
	}
	return v
}

// uiEventProof downloads the event with its proof, for trail verify.
func (s *Server) uiEventProof(w http.ResponseWriter, r *http.Request, u *uiSession) {
	ev := s.uiFindEvent(w, r, u)
	if ev == nil {
		return
	}
	proof, err := s.proveEvent(r, ev)
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	line, err := eventLine(ev, proof)
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="`+ev.ID+`.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(line, '\n'))
}

func (s *Server) uiCheckpointFile(w http.ResponseWriter, r *http.Request, u *uiSession) {
	cp, err := s.Proofs.LatestCheckpoint(r.Context(), u.OrganizationID)
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="checkpoint.txt"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(cp.Note))
}

func (s *Server) uiLogKeyFile(w http.ResponseWriter, r *http.Request, u *uiSession) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="log.key"`)
	w.Write([]byte(s.Proofs.VerifierKey() + "\n"))
}

// --- exports ---

type uiExportData struct {
	Export   *trail.Export
	FileName string
	Expected int64 // the events the page counted, for the progress bar
	Percent  int
	Download string
	Back     string
	Verify   bool
	// Subset: the export has content filters, so its lines are some
	// events of the log and verify each by its proof.
	Subset bool
}

func (s *Server) uiCreateExport(w http.ResponseWriter, r *http.Request, u *uiSession) {
	f := parseUIFilter(r.PostForm)
	f.Before, f.After = "", ""
	ef, _, err := s.eventFilter(r.Context(), u, f)
	if err != nil {
		s.renderMessage(w, r, u, http.StatusBadRequest, "Export refused", err.Error())
		return
	}
	ex := &trail.Export{OrganizationID: u.OrganizationID, Format: r.PostFormValue("format"), Gzip: r.PostFormValue("gzip") == "on"}
	if ex.Format != trail.ExportCSV && ex.Format != trail.ExportNDJSON {
		s.renderMessage(w, r, u, http.StatusBadRequest, "Export refused", "Choose CSV or NDJSON.")
		return
	}
	// An export needs its period closed: an open end is now, an open
	// start the beginning of the log.
	now := s.Now().UTC()
	if ef.RangeStart == nil {
		ef.RangeStart = &minQueryTime
	}
	if ef.RangeEnd == nil {
		end := now.Truncate(time.Minute).Add(time.Minute)
		ef.RangeEnd = &end
	}
	ef.Limit, ef.Before, ef.After = 0, nil, nil
	ex.Filter = ef
	if err := s.Exports.CreateExport(u.withCaller(r), ex); err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	if s.ExportCreated != nil {
		s.ExportCreated()
	}
	v := url.Values{"back": {f.URL()}}
	if n, err := strconv.ParseInt(r.PostFormValue("expected"), 10, 64); err == nil && n >= 0 {
		v.Set("of", strconv.FormatInt(n, 10))
	}
	http.Redirect(w, r, "/ui/exports/"+url.PathEscape(ex.ID)+"?"+v.Encode(), http.StatusSeeOther)
}

// recentExports is how many exports the exports page lists.
const recentExports = 20

// uiExports lists the organization's recent exports with their state,
// newest first: each opens its page (progress, download, verification).
func (s *Server) uiExports(w http.ResponseWriter, r *http.Request, u *uiSession) {
	list, err := s.Exports.FindRecentExports(r.Context(), u.OrganizationID, recentExports)
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	page := &uiPage{Title: "Exports", Nav: "exports", Session: u, Data: list}
	for _, ex := range list {
		if ex.State == trail.ExportPending {
			page.Refresh = "2"
		}
	}
	s.render(w, r, http.StatusOK, "exports", page)
}

func (s *Server) uiExport(w http.ResponseWriter, r *http.Request, u *uiSession) {
	ex, err := s.Exports.FindExportByID(r.Context(), u.OrganizationID, r.PathValue("id"))
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	d := &uiExportData{Export: ex, FileName: s.exportFileName(r.Context(), ex), Back: "/ui/", Verify: ex.Format == trail.ExportNDJSON && ex.Checkpoint != nil,
		Subset: ex.Filter.HasContentFilter()}
	if b := r.URL.Query().Get("back"); strings.HasPrefix(b, "/ui/") && !strings.HasPrefix(b, "//") {
		d.Back = b
	}
	if n, err := strconv.ParseInt(r.URL.Query().Get("of"), 10, 64); err == nil && n > 0 {
		d.Expected = n
		d.Percent = int(min(100, ex.Rows*100/n))
	}
	page := &uiPage{Title: "Export", Nav: "exports", Session: u, Data: d}
	switch ex.State {
	case trail.ExportPending:
		page.Refresh = "1"
	case trail.ExportReady:
		d.Download, _ = s.exportPath(ex)
	}
	s.render(w, r, http.StatusOK, "export", page)
}

// uiExportCheckpoint downloads the checkpoint an export was written
// against: an NDJSON export verifies against it.
func (s *Server) uiExportCheckpoint(w http.ResponseWriter, r *http.Request, u *uiSession) {
	ex, err := s.Exports.FindExportByID(r.Context(), u.OrganizationID, r.PathValue("id"))
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	if ex.Checkpoint == nil {
		s.renderMessage(w, r, u, http.StatusNotFound, "No checkpoint yet", "This export has no checkpoint until its file is written.")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+s.exportFileName(r.Context(), ex)+`.checkpoint"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(ex.Checkpoint.Note))
}

// uiChange is one field an event changed, from metadata keys that pair
// up: before_X and after_X, old_X and new_X, previous_X and X.
type uiChange struct {
	Field, Before, After string
	Changed              bool
}

// changePairs are the prefixes of a pair: the value before, and after.
var changePairs = [][2]string{{"before_", "after_"}, {"old_", "new_"}, {"previous_", ""}}

// metadataChanges splits an event's metadata into the fields it changed
// (in the order of their names) and the other keys.
func metadataChanges(md trail.Metadata) ([]uiChange, []uiKV) {
	used := map[string]bool{}
	var changes []uiChange
	for k := range md {
		for _, p := range changePairs {
			field, ok := strings.CutPrefix(k, p[0])
			if !ok || field == "" {
				continue
			}
			after, has := md[p[1]+field]
			if !has || used[k] || used[p[1]+field] {
				continue
			}
			used[k], used[p[1]+field] = true, true
			b, a := metadataText(md[k]), metadataText(after)
			changes = append(changes, uiChange{Field: field, Before: b, After: a, Changed: b != a})
			break
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Field < changes[j].Field })
	rest := trail.Metadata{}
	for k, v := range md {
		if !used[k] {
			rest[k] = v
		}
	}
	return changes, sortedKV(rest)
}

// metadataText is a metadata value as the UI shows it: a string as it
// is, anything else as JSON.
func metadataText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// changeSummary is one line of what an event changed, for the list:
// "priority: P2 → P1; name: A → B" (the changed fields only).
func changeSummary(md trail.Metadata) string {
	changes, _ := metadataChanges(md)
	var parts []string
	for _, c := range changes {
		if c.Changed {
			parts = append(parts, c.Field+": "+orDash(c.Before)+" → "+orDash(c.After))
		}
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// uiEventStep is GET /ui/events/{id}/newer and /older: it finds the
// event next to this one in the list it was opened from (the list's
// filters, in any of its pages) and shows it, keeping the list's filters
// and page. At the list's end it shows the same event again, saying that
// it is the newest (or oldest) of the list.
func (s *Server) uiEventStep(newer bool) func(http.ResponseWriter, *http.Request, *uiSession) {
	return func(w http.ResponseWriter, r *http.Request, u *uiSession) {
		ev := s.uiFindEvent(w, r, u)
		if ev == nil {
			return
		}
		list := parseUIFilter(r.URL.Query())
		f := list
		f.Before, f.After = "", ""
		ef, _, err := s.eventFilter(r.Context(), u, f)
		if err != nil {
			s.renderMessage(w, r, u, http.StatusBadRequest, "Filter not valid", err.Error())
			return
		}
		idx := ev.Index
		ef.Limit, ef.Before, ef.After = 1, nil, nil
		if newer {
			ef.Before = &idx
		} else {
			ef.After = &idx
		}
		res, err := s.Events.FindEvents(r.Context(), ef)
		if err != nil {
			s.uiFail(w, r, u, err)
			return
		}
		v := list.values(true)
		next := ev.ID
		if len(res.Events) > 0 {
			next = res.Events[0].ID
		} else if newer {
			v.Set("end", "newer")
		} else {
			v.Set("end", "older")
		}
		http.Redirect(w, r, pageURL("/ui/events/"+url.PathEscape(next), v), http.StatusSeeOther)
	}
}
