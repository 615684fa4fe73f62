package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/service"
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

// streamEditor is the service that changes streams, as the API and the
// web UI both use it.
func (s *Server) streamEditor() *service.StreamEditor {
	return &service.StreamEditor{Streams: s.Streams, Events: s.Events, AllowPlainHTTP: s.AllowPlainHTTP,
		CheckDestination: s.CheckDestination, Seal: s.SealStream, Open: s.OpenStream, Now: s.Now}
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
	st, generated, err := s.streamEditor().Create(r.Context(), service.StreamInput{OrganizationID: st.OrganizationID, Type: st.Type, Name: &st.Name, Config: config})
	if err != nil {
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

// changed writes the stream a change left, or the change's error; an
// update that changed nothing answers the stream as it is.
func (s *Server) changed(w http.ResponseWriter, r *http.Request, st *trail.Stream, err error) {
	if errors.Is(err, service.ErrUnchanged) {
		writeJSON(w, http.StatusOK, toStreamJSON(st))
		return
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
	var in service.StreamInput
	for field, v := range raw {
		switch field {
		case "name":
			if err := json.Unmarshal(v, &in.Name); err != nil || in.Name == nil {
				s.writeError(w, r, malformed("name", "must_be_string"))
				return
			}
		case "config":
			if err := json.Unmarshal(v, &in.Config); err != nil {
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
	st, err := s.findStream(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err = s.streamEditor().Update(r.Context(), st.OrganizationID, st.ID, in)
	s.changed(w, r, st, err)
}

func (s *Server) handleDeleteStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	st, err := s.findStream(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.streamEditor().Delete(r.Context(), st.OrganizationID, st.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.streamsChanged()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handlePauseStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	st, err := s.findStream(r, key)
	if err == nil {
		st, err = s.streamEditor().Pause(r.Context(), st.OrganizationID, st.ID)
	}
	s.changed(w, r, st, err)
}

func (s *Server) handleResumeStream(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	st, err := s.findStream(r, key)
	if err == nil {
		st, err = s.streamEditor().Resume(r.Context(), st.OrganizationID, st.ID)
	}
	s.changed(w, r, st, err)
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
	if err == nil {
		st, err = s.streamEditor().Replay(r.Context(), st.OrganizationID, st.ID, body.FromIndex, body.FromTime)
	}
	s.changed(w, r, st, err)
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
	writeJSON(w, http.StatusOK, s.testStream(r.Context(), st))
}

// testStream sends one test event to the stream's destination.
func (s *Server) testStream(ctx context.Context, st *trail.Stream) TestResult {
	now := s.Now().UTC()
	ev := testEvent(st, now, trail.CallerFromContext(ctx))
	res := TestResult{Object: "log_stream_test", EventID: ev.ID}
	if err := s.TestStream(ctx, st, ev); err != nil {
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
	return res
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
