package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
)

// StreamResponse is a log stream as the API returns it (SPEC §10):
// secrets masked, the delivery state, lag and cursor.
type StreamResponse struct {
	Object         string         `json:"object"`
	ID             string         `json:"id"`
	OrganizationID string         `json:"organization_id"`
	Type           string         `json:"type"`
	Name           string         `json:"name"`
	State          string         `json:"state"`
	Config         map[string]any `json:"config"`
	// LastError is the last failed delivery's error, kept after the
	// stream recovers; LastErrorAt says when.
	LastError   string     `json:"last_error"`
	LastErrorAt *time.Time `json:"last_error_at"`
	// Lag is how many events are not delivered yet; Cursor is the index
	// of the next one.
	Lag          int64      `json:"lag"`
	Cursor       int64      `json:"cursor"`
	Delivered    int64      `json:"delivered"`
	LastSyncedAt *time.Time `json:"last_synced_at"`
	RetryAt      *time.Time `json:"retry_at"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
}

func toStreamJSON(st *trail.Stream) StreamResponse {
	return StreamResponse{Object: "log_stream", ID: st.ID, OrganizationID: st.OrganizationID, Type: st.Type, Name: st.Name,
		State: st.State, Config: st.Masked(), LastError: st.LastError, LastErrorAt: st.LastErrorAt, Lag: st.Lag, Cursor: st.Cursor,
		Delivered: st.Delivered, LastSyncedAt: st.LastSyncedAt, RetryAt: st.RetryAt, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt}
}

var streamIDs = ident.NewGenerator()

// applyConfig sets the config fields in raw on the stream. A secret
// given as MaskedSecret keeps its value; null or "" clears an optional
// field.
func applyConfig(st *trail.Stream, raw map[string]json.RawMessage) error {
	fields := trail.StreamFields[st.Type]
	c, sec := &st.Config, &st.Secrets
	strs := st.StringFields()
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := raw[name]
		if !slices.ContainsFunc(fields, func(f trail.StreamField) bool { return f.Name == name }) {
			return malformed("config."+name, "unknown_field")
		}
		null := string(v) == "null"
		switch name {
		case "ack":
			c.Ack = false
			if !null {
				if err := json.Unmarshal(v, &c.Ack); err != nil {
					return malformed("config.ack", "must_be_boolean")
				}
			}
		case "headers":
			var h map[string]string
			if !null {
				if err := json.Unmarshal(v, &h); err != nil {
					return malformed("config.headers", "must_be_object_of_strings")
				}
			}
			for k, hv := range h {
				if hv == trail.MaskedSecret {
					old, ok := sec.Headers[k]
					if !ok {
						return malformed("config.headers."+k, "masked_value_of_unknown_header")
					}
					h[k] = old
				}
			}
			sec.Headers = h
		default:
			var str string
			if !null {
				if err := json.Unmarshal(v, &str); err != nil {
					return malformed("config."+name, "must_be_string")
				}
			}
			if str == trail.MaskedSecret && *strs[name] != "" {
				continue // the secret as it was read back: unchanged
			}
			*strs[name] = strings.TrimSpace(str)
		}
	}
	return nil
}

// validateStream checks a stream's config and its destination.
func (s *Server) validateStream(st *trail.Stream) error {
	if ps := st.Validate(s.AllowPlainHTTP); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = strings.TrimPrefix(p.Path, "/") + " " + p.Message
		}
		return &trail.Error{Code: trail.EINVALID, Message: "Invalid log stream: " + strings.Join(msgs, "; ") + ".", Problems: ps}
	}
	if s.CheckDestination != nil {
		path := "/config/url"
		if st.Type == trail.StreamS3 || st.Type == trail.StreamGCS {
			path = "/config/endpoint"
		}
		if err := s.CheckDestination(st.Destination()); err != nil {
			return &trail.Error{Code: trail.EINVALID, Message: "Invalid log stream: " + err.Error() + ".",
				Problems: []trail.Problem{{Path: path, Message: err.Error()}}}
		}
	}
	return nil
}

func (s *Server) streamsChanged() {
	if s.StreamsChanged != nil {
		s.StreamsChanged()
	}
}

var streamBodyFields = []string{"organization_id", "type", "name", "config"}

func (s *Server) handleCreateStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	raw, err := decodeBody(w, r, trail.MaxRequestBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st := &trail.Stream{}
	var config map[string]json.RawMessage
	for name, v := range raw {
		var err error
		switch name {
		case "organization_id":
			err = json.Unmarshal(v, &st.OrganizationID)
		case "type":
			err = json.Unmarshal(v, &st.Type)
		case "name":
			err = json.Unmarshal(v, &st.Name)
		case "config":
			err = json.Unmarshal(v, &config)
			if err != nil {
				s.writeError(w, r, malformed("config", "must_be_object"))
				return
			}
		default:
			s.writeError(w, r, malformed(name, "unknown_field"))
			return
		}
		if err != nil {
			s.writeError(w, r, malformed(name, "must_be_string"))
			return
		}
	}
	for _, name := range streamBodyFields {
		if _, ok := raw[name]; !ok {
			s.writeError(w, r, malformed(name, "required"))
			return
		}
	}
	if _, err := s.org(r.Context(), key, st.OrganizationID); err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, ok := trail.StreamFields[st.Type]; !ok {
		s.writeError(w, r, &trail.Error{Code: trail.EINVALID, Message: fmt.Sprintf("Invalid log stream type %q: %s.", st.Type, strings.Join(trail.StreamTypes, ", ")),
			Problems: []trail.Problem{{Path: "/type", Message: "must be one of " + strings.Join(trail.StreamTypes, ", ")}}})
		return
	}
	st.Name = strings.TrimSpace(st.Name)
	if err := applyConfig(st, config); err != nil {
		s.writeError(w, r, err)
		return
	}
	generated := ""
	if st.Type == trail.StreamHTTPS {
		if st.Config.Format == "" {
			st.Config.Format = "json"
		}
		if st.Secrets.Secret == "" {
			st.Secrets.Secret = trail.NewWebhookSecret()
			generated = st.Secrets.Secret
		}
	}
	if err := s.validateStream(st); err != nil {
		s.writeError(w, r, err)
		return
	}
	st.ID = "als_" + streamIDs.New(s.Now())
	if err := s.SealStream(st); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Streams.CreateStream(r.Context(), st); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.streamsChanged()
	j := toStreamJSON(st)
	if generated != "" {
		// Shown this once, to configure the receiver's verifier.
		j.Config["secret"] = generated
	}
	writeJSON(w, http.StatusCreated, j)
}

func (s *Server) handleListStreams(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	f, err := parseListFilter(r.URL.Query(), "organization_id")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	orgID, err := listScope(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	list, more, err := s.Streams.FindStreams(r.Context(), orgID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeList(w, f, more, list, func(st *trail.Stream) string { return st.ID }, toStreamJSON)
}

// findStream returns a stream the key may manage; another tenant's is a
// 404.
func (s *Server) findStream(r *http.Request, key *trail.APIKey) (*trail.Stream, error) {
	id := r.PathValue("id")
	st, err := s.Streams.FindStreamByID(r.Context(), key.OrganizationID, id)
	if err != nil {
		return nil, err
	}
	if !key.CanAct(st.OrganizationID) {
		return nil, trail.Errorf(trail.ENOTFOUND, "Log stream not found: '%s'.", id)
	}
	return st, nil
}

func (s *Server) handleGetStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	st, err := s.findStream(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toStreamJSON(st))
}

// errUnchanged is returned by a change's Apply when it would change
// nothing: the transaction is rolled back, no event is recorded, and the
// stream is answered as it is.
var errUnchanged = errors.New("the stream is unchanged")

// changeStream applies a change to the stream in the path and writes the
// stream as it then is.
func (s *Server) changeStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey, action string, md trail.Metadata, apply func(*trail.Stream) error) {
	st, err := s.findStream(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err = s.Streams.UpdateStream(r.Context(), st.OrganizationID, st.ID, trail.StreamChange{Action: action, Metadata: md, Apply: apply})
	if errors.Is(err, errUnchanged) {
		// Nothing to record: the stream as it is.
		st, err = s.findStream(r, key)
		if err == nil {
			writeJSON(w, http.StatusOK, toStreamJSON(st))
			return
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.streamsChanged()
	writeJSON(w, http.StatusOK, toStreamJSON(st))
}

func (s *Server) handleUpdateStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	raw, err := decodeBody(w, r, trail.MaxRequestBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var name *string
	var config map[string]json.RawMessage
	for field, v := range raw {
		switch field {
		case "name":
			if err := json.Unmarshal(v, &name); err != nil || name == nil {
				s.writeError(w, r, malformed("name", "must_be_string"))
				return
			}
		case "config":
			if err := json.Unmarshal(v, &config); err != nil {
				s.writeError(w, r, malformed("config", "must_be_object"))
				return
			}
		case "type", "organization_id":
			s.writeError(w, r, malformed(field, "cannot_be_changed"))
			return
		default:
			s.writeError(w, r, malformed(field, "unknown_field"))
			return
		}
	}
	// The event lists what really changed, compared in the transaction
	// with the stream as stored: a field sent back as it reads (a secret
	// masked) is no change. A PATCH that changes nothing records nothing
	// and leaves the stream as it is (errUnchanged).
	md := trail.Metadata{}
	s.changeStream(w, r, key, trail.ActionStreamUpdated, md, func(st *trail.Stream) error {
		if err := s.openForUpdate(st); err != nil {
			return err
		}
		before := *st
		before.Secrets.Headers = maps.Clone(st.Secrets.Headers)
		if name != nil {
			st.Name = strings.TrimSpace(*name)
		}
		if err := applyConfig(st, config); err != nil {
			return err
		}
		if err := s.validateStream(st); err != nil {
			return err
		}
		changed := st.ChangedFields(&before)
		if len(changed) == 0 {
			return errUnchanged
		}
		md["changed"] = strings.Join(changed, ",")
		if st.State != trail.StreamInactive {
			st.State = trail.StreamActive // retried at once: the change may have fixed it
		}
		return s.SealStream(st)
	})
}

// openForUpdate opens a stream's secrets for an update that keeps some
// of them.
func (s *Server) openForUpdate(st *trail.Stream) error {
	if s.OpenStream == nil {
		return fmt.Errorf("no secret key to open the stream's secrets")
	}
	return s.OpenStream(st)
}

func (s *Server) handleDeleteStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	st, err := s.findStream(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Streams.DeleteStream(r.Context(), st.OrganizationID, st.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.streamsChanged()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePauseStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	s.changeStream(w, r, key, trail.ActionStreamPaused, nil, func(st *trail.Stream) error {
		st.State = trail.StreamInactive
		return nil
	})
}

func (s *Server) handleResumeStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	s.changeStream(w, r, key, trail.ActionStreamResumed, nil, func(st *trail.Stream) error {
		st.State = trail.StreamActive
		return nil
	})
}

// handleReplayStream moves a stream's cursor back (or on) to from_index,
// or to the first event that occurred at or after from_time: delivery
// goes on from there.
func (s *Server) handleReplayStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	var body struct {
		FromIndex *int64     `json:"from_index"`
		FromTime  *time.Time `json:"from_time"`
	}
	if err := decodeJSON(w, r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if (body.FromIndex == nil) == (body.FromTime == nil) {
		s.writeError(w, r, malformed("from_index", "one_of_from_index_or_from_time_required"))
		return
	}
	st, err := s.findStream(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	md := trail.Metadata{}
	var from int64
	switch {
	case body.FromIndex != nil:
		if *body.FromIndex < 0 {
			s.writeError(w, r, &trail.Error{Code: trail.EINVALID, Message: "from_index must be 0 or more.",
				Problems: []trail.Problem{{Path: "/from_index", Message: "must be 0 or more"}}})
			return
		}
		from = *body.FromIndex
		md["from_index"] = json.Number(fmt.Sprint(from))
	default:
		t := body.FromTime.UTC()
		from, err = s.firstIndexFrom(r.Context(), st.OrganizationID, t, st.Cursor+st.Lag)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		md["from_time"] = t.Format(time.RFC3339Nano)
		md["from_index"] = json.Number(fmt.Sprint(from))
	}
	s.changeStream(w, r, key, trail.ActionStreamReplayed, md, func(st *trail.Stream) error {
		md["previous_cursor"] = json.Number(fmt.Sprint(st.Cursor))
		if head := st.Cursor + st.Lag; from > head {
			return &trail.Error{Code: trail.EINVALID, Message: fmt.Sprintf("from_index %d is past the end of the log (%d events).", from, head),
				Problems: []trail.Problem{{Path: "/from_index", Message: "must be at most the log's size"}}}
		}
		st.Cursor = from
		return nil
	})
}

// firstIndexFrom returns the lowest index of an event that occurred at or
// after t, or head (the log's size) when none did.
func (s *Server) firstIndexFrom(ctx context.Context, orgID string, t time.Time, head int64) (int64, error) {
	page, err := s.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: orgID, RangeStart: &t, Ascending: true, Limit: 1})
	if err != nil {
		return 0, err
	}
	if len(page.Events) > 0 {
		return page.Events[0].Index, nil
	}
	return head, nil
}

// TestResult is the answer of POST /audit_logs/streams/{id}/test.
type TestResult struct {
	Object  string `json:"object"`
	Success bool   `json:"success"`
	// Error is the destination's answer when it refused the test event;
	// Permanent says whether it would put the stream in state invalid.
	Error     string `json:"error,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	EventID   string `json:"event_id"`
}

// handleTestStream sends one test event, now, whatever the stream's
// state; the cursor does not move and nothing is stored.
func (s *Server) handleTestStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	st, err := s.findStream(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.Now().UTC()
	ev := testEvent(st, now, trail.CallerFromContext(r.Context()))
	res := TestResult{Object: "log_stream_test", EventID: ev.ID}
	if err := s.TestStream(r.Context(), st, ev); err != nil {
		// A delivery failure's message is classified for the tenant
		// (delivery.Classify); any other error's text stays in the log.
		var p interface {
			error
			IsPermanent() bool
		}
		if errors.As(err, &p) {
			res.Error, res.Permanent = p.Error(), p.IsPermanent()
		} else {
			res.Error = "the test event could not be sent (the server's log has the details)"
			s.Logger.Warn("log stream test failed", "stream", st.ID, "organization", st.OrganizationID, "err", err)
		}
	} else {
		res.Success = true
	}
	writeJSON(w, http.StatusOK, res)
}

// testEvent is the event a test sends: shaped as every streamed event,
// action log_stream.tested, index -1; it is not in the log.
func testEvent(st *trail.Stream, now time.Time, c *trail.Caller) *trail.Event {
	id := "test_" + streamIDs.New(now)
	ev := map[string]any{"id": id, "organization_id": st.OrganizationID, "index": -1, "action": "log_stream.tested", "version": 1,
		"occurred_at": now.Format(time.RFC3339Nano), "received_at": now.Format(time.RFC3339Nano), "actor": c.Actor,
		"targets": []trail.Target{{ID: st.ID, Type: "log_stream", Name: st.Name}}, "context": c.Context,
		"metadata": map[string]any{"test": true}}
	b, _ := json.Marshal(ev)
	return &trail.Event{ID: id, OrganizationID: st.OrganizationID, Index: -1, OccurredAt: now, Raw: string(b)}
}

// auditLogConfigurationJSON is WorkOS's GET
// /organizations/{id}/audit_log_configuration, with every stream in
// log_streams.
type auditLogConfigurationJSON struct {
	OrganizationID        string                 `json:"organization_id"`
	RetentionPeriodInDays int                    `json:"retention_period_in_days"`
	State                 string                 `json:"state"`
	LogStream             *logStreamSummaryJSON  `json:"log_stream,omitempty"`
	LogStreams            []logStreamSummaryJSON `json:"log_streams"`
}

type logStreamSummaryJSON struct {
	ID           string     `json:"id"`
	Type         string     `json:"type"`
	State        string     `json:"state"`
	LastSyncedAt *time.Time `json:"last_synced_at"`
	CreatedAt    time.Time  `json:"created_at"`
}

func (s *Server) handleGetAuditLogConfiguration(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	org, err := s.pathOrg(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	j := auditLogConfigurationJSON{OrganizationID: org.ID, RetentionPeriodInDays: org.RetentionDays, State: "active", LogStreams: []logStreamSummaryJSON{}}
	f := trail.ListFilter{Limit: trail.MaxStreams, Ascending: true}
	list, _, err := s.Streams.FindStreams(r.Context(), org.ID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, st := range list {
		j.LogStreams = append(j.LogStreams, logStreamSummaryJSON{ID: st.ID, Type: st.Type, State: st.State, LastSyncedAt: st.LastSyncedAt, CreatedAt: st.CreatedAt})
	}
	if len(j.LogStreams) > 0 {
		j.LogStream = &j.LogStreams[0]
	}
	writeJSON(w, http.StatusOK, j)
}
