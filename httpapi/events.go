package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// readBody reads at most limit bytes; a larger body is ETOOLARGE.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, trail.Errorf(trail.ETOOLARGE, "The request body is larger than %d bytes.", limit)
	} else if err != nil {
		return nil, trail.Errorf(trail.EINVALID, "Could not read the request body.")
	}
	return body, nil
}

// decodeBody reads a JSON object body into its raw fields; a body that is
// not a JSON object is WorkOS's 422.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64) (map[string]json.RawMessage, error) {
	body, err := readBody(w, r, limit)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, &trail.Error{Code: trail.EMALFORMED, Message: "Validation failed.",
			Problems: []trail.Problem{{Path: "body", Message: "invalid_json"}}}
	}
	return raw, nil
}

// writableOrg is org for ingestion: org_system holds only Trail's own
// events, which clients must not be able to forge.
func (s *Server) writableOrg(ctx context.Context, key *trail.APIKey, id string) (*trail.Organization, error) {
	if id == trail.SystemOrganizationID {
		return nil, trail.Errorf(trail.EFORBIDDEN, "%s holds Trail's own audit events and accepts no others.", id)
	}
	return s.org(ctx, key, id)
}

// prepareEvent decodes and validates one event object of organization
// org, and returns it with its decoded JSON object. A non-nil error is the
// event's rejection.
func (s *Server) prepareEvent(r *http.Request, org *trail.Organization, raw json.RawMessage) (*trail.EventInput, map[string]any, error) {
	if len(raw) > trail.MaxEventBytes {
		return nil, nil, trail.Errorf(trail.ETOOLARGE, "An encoded event must be at most %d bytes; this one has %d.", trail.MaxEventBytes, len(raw))
	}
	in, m, ps, err := DecodeEvent(raw)
	if err != nil {
		return nil, nil, err
	}
	in.Normalize()
	ps = mergeProblems(ps, in.Validate(s.Now(), org.RetentionDays))
	if len(ps) == 0 && s.Validator != nil {
		sps, err := s.Validator.ValidateEvent(r.Context(), in)
		if err != nil {
			return nil, nil, err
		}
		ps = sps
	}
	if len(ps) > 0 {
		return nil, nil, &trail.Error{Code: trail.EINVALIDEVENT, Message: "Invalid Audit Log event.", Problems: ps}
	}
	return in, m, nil
}

// DecodeEvent reads one event object as the API does (WorkOS's field
// names and types): the input, the decoded object, and the problems of
// its shape and text (a reserved action among them). The caller
// normalizes and validates the input. trail import reads its lines with
// it, so that a file is held to the API's rules.
func DecodeEvent(raw json.RawMessage) (*trail.EventInput, map[string]any, []trail.Problem, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return nil, nil, nil, &trail.Error{Code: trail.EINVALIDEVENT, Message: "Invalid Audit Log event.",
			Problems: []trail.Problem{{Path: "", Message: "must be a JSON object"}}}
	}
	in, ps := decodeEvent(m)
	ps = append(textProblems(raw), ps...)
	if trail.ReservedAction(in.Action) {
		ps = append(ps, trail.Problem{Path: "/action", Message: "is reserved for Trail's own audit events"})
	}
	return in, m, ps, nil
}

func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if raw == nil || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// ingestBody reads an ingestion request: its raw fields and its
// organization_id (422 when missing).
func ingestBody(w http.ResponseWriter, r *http.Request, limit int64) (map[string]json.RawMessage, string, error) {
	raw, err := decodeBody(w, r, limit)
	if err != nil {
		return nil, "", err
	}
	orgID, ok := jsonString(raw["organization_id"])
	if !ok || orgID == "" {
		return nil, "", malformed("organization_id", "required")
	}
	return raw, orgID, nil
}

// handleCreateEvent is WorkOS's POST /audit_logs/events.
func (s *Server) handleCreateEvent(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	raw, orgID, err := ingestBody(w, r, trail.MaxRequestBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ev := raw["event"]; len(ev) == 0 || string(ev) == "null" {
		s.writeError(w, r, malformed("event", "required"))
		return
	}
	org, err := s.writableOrg(r.Context(), key, orgID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in, _, err := s.prepareEvent(r, org, raw["event"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	in.IdempotencyKey = r.Header.Get("Idempotency-Key")
	res, err := s.Events.AppendEvents(r.Context(), org.ID, []*trail.EventInput{in})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.Metrics.observeIngest(res)
	if s.EventsAppended != nil {
		s.EventsAppended()
	}
	if res[0].Err != nil {
		s.writeError(w, r, res[0].Err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "id": res[0].ID, "index": res[0].Index})
}

type batchItem struct {
	ID        string     `json:"id,omitempty"`
	Index     *int64     `json:"index,omitempty"`
	Duplicate bool       `json:"duplicate,omitempty"` // the event was stored before (idempotency)
	Error     *errorBody `json:"error,omitempty"`
}

// handleCreateEventBatch is POST /audit_logs/events/batch: each event is
// accepted or rejected on its own.
func (s *Server) handleCreateEventBatch(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	raw, orgID, err := ingestBody(w, r, trail.MaxBatchBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw["events"], &items); err != nil || items == nil {
		s.writeError(w, r, malformed("events", "required"))
		return
	}
	if len(items) == 0 || len(items) > trail.MaxBatchEvents {
		s.writeError(w, r, &trail.Error{Code: trail.EINVALID, Message: fmt.Sprintf("A batch holds 1 to %d events.", trail.MaxBatchEvents),
			Problems: []trail.Problem{{Path: "/events", Message: fmt.Sprintf("must contain 1 to %d events", trail.MaxBatchEvents)}}})
		return
	}
	org, err := s.writableOrg(r.Context(), key, orgID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	headerKey := r.Header.Get("Idempotency-Key")
	out := make([]batchItem, len(items))
	var inputs []*trail.EventInput
	var positions []int
	for i, item := range items {
		in, m, err := s.prepareEvent(r, org, item)
		if err != nil {
			if trail.ErrorCode(err) == trail.EINTERNAL {
				s.writeError(w, r, err)
				return
			}
			_, body := errorJSON(err)
			out[i].Error = &body
			continue
		}
		if k, ok := m["idempotency_key"].(string); ok {
			in.IdempotencyKey = k
		} else if headerKey != "" {
			in.IdempotencyKey = headerKey + "/" + strconv.Itoa(i)
		}
		inputs = append(inputs, in)
		positions = append(positions, i)
	}
	if len(inputs) > 0 {
		res, err := s.Events.AppendEvents(r.Context(), org.ID, inputs)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		s.Metrics.observeIngest(res)
		if s.EventsAppended != nil {
			s.EventsAppended()
		}
		for j, rr := range res {
			i := positions[j]
			if rr.Err != nil {
				_, body := errorJSON(rr.Err)
				out[i].Error = &body
				continue
			}
			idx := rr.Index
			out[i].ID, out[i].Index, out[i].Duplicate = rr.ID, &idx, rr.Duplicate
		}
	}
	writeJSON(w, http.StatusOK, listEnvelope{Object: "list", Data: out, ListMetadata: listMetadata{}})
}

type listEnvelope struct {
	Object       string       `json:"object"`
	Data         any          `json:"data"`
	ListMetadata listMetadata `json:"list_metadata"`
}

type listMetadata struct {
	Before *string `json:"before"`
	After  *string `json:"after"`
}

// EncodeEventCursor returns the list cursor of an event index. Cursors
// are opaque to clients: base64url of "e:<index>".
func EncodeEventCursor(index int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("e:" + strconv.FormatInt(index, 10)))
}

func decodeEventCursor(s string) (int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), "e:") {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b[2:]), 10, 64)
	return n, err == nil && n >= 0
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// badParam is a 400 naming the query parameter.
func badParam(name, msg string) error {
	return &trail.Error{Code: trail.EINVALID, Message: fmt.Sprintf("Invalid query parameter %s: %s.", name, msg),
		Problems: []trail.Problem{{Path: name, Message: msg}}}
}

// listParam returns the values of a list parameter: one plain name=a,b is
// split on commas; repeated parameters and name[] are taken as they are, so
// that a value may contain a comma.
func listParam(q url.Values, name string) []string {
	var out []string
	plain, brackets := q[name], q[name+"[]"]
	if len(plain) == 1 && len(brackets) == 0 {
		for _, p := range strings.Split(plain[0], ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	for _, v := range append(plain, brackets...) {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Times that Trail can compare: occurred_at is stored in Unix nanoseconds.
var (
	minQueryTime = time.Unix(0, 0).UTC()
	maxQueryTime = time.Unix(0, math.MaxInt64).UTC()
)

// eventQueryParams are the parameters of SPEC §7; true marks the lists,
// which may also be repeated or written name[].
var eventQueryParams = map[string]bool{
	"organization_id": false, "actions": true, "actor_ids": true, "actor_names": true, "actor_types": true,
	"target_ids": true, "targets": true, "range_start": false, "range_end": false, "q": false,
	"limit": false, "before": false, "after": false, "order": false,
}

// MaxFilterValues bounds each list parameter of a query.
const MaxFilterValues = 100

// parseEventFilter reads SPEC §7's parameters; anything unknown or bad is
// a 400 naming it.
func parseEventFilter(q url.Values, key *trail.APIKey) (trail.EventFilter, error) {
	f := trail.EventFilter{Limit: 50}
	for name, vals := range q {
		base, brackets := strings.CutSuffix(name, "[]")
		isList, known := eventQueryParams[base]
		if !known || (brackets && !isList) {
			return f, badParam(name, "unknown parameter")
		}
		if !isList && len(vals) > 1 {
			return f, badParam(name, "given more than once")
		}
	}
	for name, isList := range eventQueryParams {
		if isList && len(listParam(q, name)) > MaxFilterValues {
			return f, badParam(name, fmt.Sprintf("at most %d values", MaxFilterValues))
		}
	}
	f.OrganizationID = q.Get("organization_id")
	if f.OrganizationID == "" {
		if key.OrganizationID == "" {
			return f, badParam("organization_id", "required")
		}
		f.OrganizationID = key.OrganizationID
	}
	f.Actions = listParam(q, "actions")
	for _, a := range f.Actions {
		if !trail.ValidAction(strings.TrimSuffix(a, ".*")) {
			return f, badParam("actions", fmt.Sprintf("%q is not an action name or a prefix written name.*", a))
		}
	}
	f.ActorIDs = listParam(q, "actor_ids")
	f.ActorNames = listParam(q, "actor_names")
	f.ActorTypes = listParam(q, "actor_types")
	f.TargetIDs = listParam(q, "target_ids")
	f.TargetTypes = listParam(q, "targets")
	for _, name := range []string{"range_start", "range_end"} {
		if v := q.Get(name); v != "" {
			t, err := parseTimestamp(v)
			if err != nil {
				return f, badParam(name, "must be an RFC 3339 date-time")
			}
			// Outside what Unix nanoseconds hold, a bound is either no
			// bound (a start before 1970, an end after 2262) or one that
			// nothing can meet.
			switch {
			case name == "range_start" && t.Before(minQueryTime):
			case name == "range_start":
				t = minTime(t, maxQueryTime)
				f.RangeStart = &t
			case t.After(maxQueryTime):
			default:
				t = maxTime(t, minQueryTime)
				f.RangeEnd = &t
			}
		}
	}
	if f.RangeStart != nil && f.RangeEnd != nil && !f.RangeStart.Before(*f.RangeEnd) {
		return f, badParam("range_end", "must be after range_start")
	}
	f.Query = q.Get("q")
	if len(f.Query) > 1024 {
		return f, badParam("q", "must be at most 1024 characters")
	}
	var err error
	if f.Limit, f.Ascending, err = parsePaging(q, 50, 1000); err != nil {
		return f, err
	}
	for _, name := range []string{"before", "after"} {
		if v := q.Get(name); v != "" {
			n, ok := decodeEventCursor(v)
			if !ok {
				return f, badParam(name, "not a cursor returned by this API")
			}
			if name == "before" {
				f.Before = &n
			} else {
				f.After = &n
			}
		}
	}
	return f, nil
}

// handleListEvents is GET /audit_logs/events (SPEC §7).
func (s *Server) handleListEvents(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	f, err := parseEventFilter(r.URL.Query(), key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.org(r.Context(), key, f.OrganizationID); err != nil {
		s.writeError(w, r, err)
		return
	}
	page, err := s.Events.FindEvents(r.Context(), f)
	if trail.ErrorCode(err) == trail.EINVALID && (f.Before != nil || f.After != nil) {
		name := "after"
		if f.Before != nil {
			name = "before"
		}
		err = badParam(name, trail.ErrorMessage(err))
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var meta listMetadata
	if n := len(page.Events); n > 0 {
		first, last := EncodeEventCursor(page.Events[0].Index), EncodeEventCursor(page.Events[n-1].Index)
		if f.Before != nil {
			meta.After = &last
			if page.HasMore {
				meta.Before = &first
			}
		} else {
			// Ascending, the last page still carries after: a reader that
			// tails the log polls with it for events that arrive later.
			if page.HasMore || f.Ascending {
				meta.After = &last
			}
			if f.After != nil {
				meta.Before = &first
			}
		}
	}
	events := page.Events
	if events == nil {
		events = []*trail.Event{}
	}
	writeJSON(w, http.StatusOK, listEnvelope{Object: "list", Data: events, ListMetadata: meta})
}

// handleGetEvent is GET /audit_logs/events/{id}.
func (s *Server) handleGetEvent(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	id := r.PathValue("id")
	orgID := r.URL.Query().Get("organization_id")
	if key.OrganizationID != "" {
		if orgID != "" && orgID != key.OrganizationID {
			s.writeError(w, r, trail.Errorf(trail.ENOTFOUND, "Audit Log Event not found: '%s'.", id))
			return
		}
		orgID = key.OrganizationID
	}
	ev, err := s.Events.FindEventByID(r.Context(), orgID, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var proof *eventProof
	if s.Proofs != nil {
		if proof, err = s.proveEvent(r, ev); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	switch {
	case ev.Purged:
		pe := purgedEvent{ID: ev.ID, Index: ev.Index, Purged: true, LeafHash: ev.PurgedLeafHash, Proof: proof}
		if s.PurgeEvidence != nil && proof != nil {
			if pe.Evidence, err = s.PurgeEvidence(r.Context(), ev.OrganizationID, proof.TreeSize); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		writeJSON(w, http.StatusOK, pe)
	case s.Proofs == nil:
		writeJSON(w, http.StatusOK, ev)
	default:
		writeJSON(w, http.StatusOK, eventWithProof{Event: ev, Proof: proof})
	}
}
