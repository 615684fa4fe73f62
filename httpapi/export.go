package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// ExportResponse is an export as the API returns it: WorkOS's fields
// (object, id, state, url, created_at, updated_at) and Trail's.
type ExportResponse struct {
	Object         string     `json:"object"`
	ID             string     `json:"id"`
	State          string     `json:"state"`
	URL            *string    `json:"url,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
	OrganizationID string     `json:"organization_id"`
	Format         string     `json:"format"`
	Gzip           bool       `json:"gzip"`
	RangeStart     *time.Time `json:"range_start,omitempty"`
	RangeEnd       *time.Time `json:"range_end,omitempty"`
	Actions        []string   `json:"actions,omitempty"`
	ActorIDs       []string   `json:"actor_ids,omitempty"`
	ActorNames     []string   `json:"actor_names,omitempty"`
	ActorTypes     []string   `json:"actor_types,omitempty"`
	TargetIDs      []string   `json:"target_ids,omitempty"`
	Targets        []string   `json:"targets,omitempty"`
	Query          string     `json:"q,omitempty"`
	// Rows and Bytes: what the file holds, or so far while pending.
	Rows  int64 `json:"rows"`
	Bytes int64 `json:"bytes"`
	// TreeSize and Checkpoint: the signed checkpoint the file was written
	// against (its events are below the size; NDJSON lines prove their
	// inclusion in it), once ready.
	TreeSize   *int64     `json:"tree_size,omitempty"`
	Checkpoint *string    `json:"checkpoint,omitempty"`
	URLExpires *time.Time `json:"url_expires_at,omitempty"`
	FileName   string     `json:"file_name,omitempty"`
	Error      string     `json:"error,omitempty"`
}

func (s *Server) toExportJSON(r *http.Request, ex *trail.Export) ExportResponse {
	f := ex.Filter
	j := ExportResponse{Object: "audit_log_export", ID: ex.ID, State: ex.State, CreatedAt: ex.CreatedAt, UpdatedAt: ex.UpdatedAt,
		OrganizationID: ex.OrganizationID, Format: ex.Format, Gzip: ex.Gzip, RangeStart: f.RangeStart, RangeEnd: f.RangeEnd,
		Actions: f.Actions, ActorIDs: f.ActorIDs, ActorNames: f.ActorNames, ActorTypes: f.ActorTypes, TargetIDs: f.TargetIDs,
		Targets: f.TargetTypes, Query: f.Query, Rows: ex.Rows, Bytes: ex.Bytes}
	switch ex.State {
	case trail.ExportReady:
		u, expires := s.exportURL(ex)
		j.URL, j.URLExpires, j.FileName = &u, &expires, s.exportFileName(r.Context(), ex)
		if cp := ex.Checkpoint; cp != nil {
			j.TreeSize, j.Checkpoint = &cp.Size, &cp.Note
		}
	case trail.ExportError, trail.ExportPending:
		// A pending export's error is that of its last failed attempt.
		j.Error = ex.Error
	}
	return j
}

// BaseURL is the base of every link the server hands out (portal links,
// export downloads): PublicURL, or http:// and the address the server
// listens on. It is never built from a request: Host, X-Forwarded-Host and
// Forwarded are the client's to choose, and a link built from them would
// send a tenant's browser, and the link's secret, wherever the client
// said.
func (s *Server) BaseURL() string {
	if s.PublicURL != "" {
		return strings.TrimSuffix(s.PublicURL, "/")
	}
	return s.URL()
}

// exportURL returns a download link of a ready export, valid for
// ExportURLTTL: it carries its expiry and an HMAC of both, so it needs no
// API key and cannot be altered or extended.
func (s *Server) exportURL(ex *trail.Export) (string, time.Time) {
	path, expires := s.exportPath(ex)
	return s.BaseURL() + path, expires
}

// exportPath is exportURL without its base: the web UI links to it
// relatively, on the origin the browser already uses.
func (s *Server) exportPath(ex *trail.Export) (string, time.Time) {
	expires := s.Now().Add(trail.ExportURLTTL).Truncate(time.Second).UTC()
	q := url.Values{"expires": {strconv.FormatInt(expires.Unix(), 10)}, "signature": {s.exportSignature(ex.ID, expires.Unix())}}
	return "/audit_logs/exports/" + url.PathEscape(ex.ID) + "/download?" + q.Encode(), expires
}

func (s *Server) exportSignature(id string, expires int64) string {
	m := hmac.New(sha256.New, s.ExportURLKey)
	fmt.Fprintf(m, "trail export download\x00%s\x00%d", id, expires)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// exportBodyFields are the fields of POST /audit_logs/exports; true marks
// the lists.
var exportBodyFields = map[string]bool{
	"organization_id": false, "range_start": false, "range_end": false, "q": false, "format": false, "gzip": false,
	"actions": true, "actors": true, "actor_names": true, "actor_ids": true, "actor_types": true, "target_ids": true, "targets": true,
}

// parseExportBody reads the body of POST /audit_logs/exports into an
// export. The filters are checked as the query parameters of SPEC §7 are.
func parseExportBody(raw map[string]json.RawMessage, key *trail.APIKey) (*trail.Export, error) {
	q := url.Values{}
	ex := &trail.Export{Format: trail.ExportCSV}
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := raw[name]
		isList, known := exportBodyFields[name]
		switch {
		case !known:
			return nil, malformed(name, "unknown_field")
		case string(v) == "null":
		case name == "gzip":
			if err := json.Unmarshal(v, &ex.Gzip); err != nil {
				return nil, malformed(name, "must_be_boolean")
			}
		case isList:
			var list []string
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, malformed(name, "must_be_array_of_strings")
			}
			if name == "actors" { // deprecated by WorkOS: actor_names
				name = "actor_names"
			}
			for _, item := range list {
				if item != "" {
					q.Add(name, item)
				}
			}
		default:
			var str string
			if err := json.Unmarshal(v, &str); err != nil {
				return nil, malformed(name, "must_be_string")
			}
			if name == "format" {
				ex.Format = str
			} else if str != "" {
				q.Set(name, str)
			}
		}
	}
	for _, name := range []string{"organization_id", "range_start", "range_end"} {
		if q.Get(name) == "" {
			return nil, malformed(name, "required")
		}
	}
	if ex.Format != trail.ExportCSV && ex.Format != trail.ExportNDJSON {
		return nil, &trail.Error{Code: trail.EINVALID, Message: fmt.Sprintf("Invalid format %q: csv or ndjson.", ex.Format),
			Problems: []trail.Problem{{Path: "/format", Message: "must be csv or ndjson"}}}
	}
	f, err := parseEventFilter(q, key)
	if err != nil {
		var te *trail.Error
		if !errors.As(err, &te) || len(te.Problems) == 0 {
			return nil, err
		}
		field := te.Problems[0].Path
		msg := te.Problems[0].Message
		if field == "range_start" || field == "range_end" {
			return nil, &trail.Error{Code: trail.EINVALIDRANGE, Message: "Invalid date range",
				Problems: []trail.Problem{{Path: "/" + field, Message: msg}}}
		}
		return nil, invalidField(field, msg)
	}
	f.Limit = 0
	ex.OrganizationID, ex.Filter = f.OrganizationID, f
	return ex, nil
}

func (s *Server) handleCreateExport(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	raw, err := decodeBody(w, r, trail.MaxRequestBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ex, err := parseExportBody(raw, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.org(r.Context(), key, ex.OrganizationID); err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.Exports.CreateExport(r.Context(), ex); err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.ExportCreated != nil {
		s.ExportCreated()
	}
	writeJSON(w, http.StatusCreated, s.toExportJSON(r, ex))
}

// findExport returns an export the key may see; another tenant's is a 404.
func (s *Server) findExport(r *http.Request, key *trail.APIKey) (*trail.Export, error) {
	id := r.PathValue("id")
	ex, err := s.Exports.FindExportByID(r.Context(), key.OrganizationID, id)
	if err != nil {
		return nil, err
	}
	if !key.CanAct(ex.OrganizationID) {
		return nil, trail.Errorf(trail.ENOTFOUND, "Audit Log Export not found: '%s'.", id)
	}
	return ex, nil
}

func (s *Server) handleGetExport(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	ex, err := s.findExport(r, key)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.toExportJSON(r, ex))
}

// handleDownloadExport serves a ready export's file to whoever holds a
// valid link from GET /audit_logs/exports/{id}: no API key.
func (s *Server) handleDownloadExport(w http.ResponseWriter, r *http.Request, _ *trail.APIKey) {
	id := r.PathValue("id")
	q := r.URL.Query()
	expires, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	sig := q.Get("signature")
	if err != nil || sig == "" || !hmac.Equal([]byte(sig), []byte(s.exportSignature(id, expires))) {
		s.writeError(w, r, trail.Errorf(trail.EFORBIDDEN, "This download link is not valid: get a new one with GET /audit_logs/exports/%s.", id))
		return
	}
	if s.Now().Unix() > expires {
		s.writeError(w, r, trail.Errorf(trail.EFORBIDDEN, "This download link expired at %s: get a new one with GET /audit_logs/exports/%s.",
			time.Unix(expires, 0).UTC().Format(time.RFC3339), id))
		return
	}
	ex, err := s.Exports.FindExportByID(r.Context(), "", id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ex.State != trail.ExportReady {
		s.writeError(w, r, trail.Errorf(trail.ENOTFOUND, "The export %s has no file: it is %s.", id, ex.State))
		return
	}
	f, err := s.Exports.OpenExportFile(r.Context(), ex.OrganizationID, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", ex.ContentType())
	h.Set("Content-Disposition", `attachment; filename="`+s.exportFileName(r.Context(), ex)+`"`)
	h.Set("Content-Length", strconv.FormatInt(ex.Bytes, 10))
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// A large file takes longer than the server's write timeout: the
	// deadline moves on with every chunk sent.
	rc := http.NewResponseController(w)
	buf := make([]byte, 256<<10)
	for {
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			s.Logger.Error("export download: cannot move the write deadline", "err", err)
		}
		n, err := f.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF {
			return
		} else if err != nil {
			// The status is sent; a short body tells the client.
			s.Logger.Error("export download", "export", id, "err", err, "request_id", r.Context().Value(requestIDKey))
			return
		}
	}
}
