package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/service"
)

// --- settings ---

type uiSettingsData struct {
	RetentionDays int
	Checkpoint    *trail.Checkpoint
	VerifierKey   string
	Streams       []*trail.Stream
	Types         []string
	MaxStreams    int
	BaseURL       string
	OrgID         string
	Test          *uiTestResult
}

type uiTestResult struct {
	Stream  string
	Success bool
	Error   string
}

// uiDone are the messages a change's redirect may show (a fixed list, so
// a link cannot make the page say something else).
var uiDone = map[string]string{
	"created": "The log stream was created: it starts with the events from now on.",
	"updated": "The log stream was saved.",
	"paused":  "The log stream is paused: events wait until you resume it.",
	"resumed": "The log stream was resumed: delivery goes on from where it stopped.",
	"deleted": "The log stream was deleted.",
}

func (s *Server) uiSettings(w http.ResponseWriter, r *http.Request, u *uiSession) {
	page := &uiPage{Title: "Settings", Nav: "settings", Session: u, Flash: uiDone[r.URL.Query().Get("done")]}
	d, err := s.settingsData(r, u)
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	page.Data = d
	s.render(w, r, http.StatusOK, "settings", page)
}

func (s *Server) settingsData(r *http.Request, u *uiSession) (*uiSettingsData, error) {
	d := &uiSettingsData{RetentionDays: u.org.RetentionDays, VerifierKey: s.Proofs.VerifierKey(), Types: trail.StreamTypes,
		MaxStreams: trail.MaxStreams, BaseURL: s.BaseURL(), OrgID: u.OrganizationID}
	// The checkpoint and the streams are read at once.
	var wg sync.WaitGroup
	var streamsErr error
	if s.Streams != nil {
		wg.Go(func() {
			d.Streams, _, streamsErr = s.Streams.FindStreams(r.Context(), u.OrganizationID, trail.ListFilter{Limit: trail.MaxStreams})
		})
	}
	cp, err := s.Proofs.LatestCheckpoint(r.Context(), u.OrganizationID)
	wg.Wait()
	if err != nil && trail.ErrorCode(err) != trail.ENOTFOUND {
		return nil, err
	}
	if streamsErr != nil {
		return nil, streamsErr
	}
	d.Checkpoint = cp
	return d, nil
}

// --- log streams, through the same service as the API ---

// uiField is one field of a stream's form.
type uiField struct {
	Name, Label, Kind, Value, Hint, Error string
	Required, Secret, Set, Checked        bool
	Options                               []string
}

type uiStreamForm struct {
	Stream    *trail.Stream // nil when new
	Type      string
	Types     []string
	Name      string
	NameError string
	Fields    []uiField
	Errors    []string
	// Invalid lists the fields whose errors are marked on them, for the
	// summary at the top, each a link to its field.
	Invalid []uiFieldError
	Secret  string // a generated signing secret, shown once
}

type uiFieldError struct{ ID, Text string }

// sentence makes a field's problem a sentence that names the field ("URL
// is required for Splunk streams."), as the summary and a screen reader
// read it out of its place.
func sentence(label, msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return label + " is not valid."
	}
	if r := msg[0]; r >= 'a' && r <= 'z' && !strings.HasPrefix(strings.ToLower(msg), strings.ToLower(label)) {
		msg = label + " " + msg
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

var fieldLabels = map[string]string{
	"site": "Datadog site", "api_key": "API key", "service": "Service", "source": "Source", "tags": "Tags", "hostname": "Host name",
	"url": "URL", "token": "HEC token", "index": "Index", "sourcetype": "Source type", "ack": "Wait for indexer acknowledgement",
	"bucket": "Bucket", "region": "Region", "prefix": "Key prefix", "access_key_id": "Access key ID", "secret_access_key": "Secret access key",
	"hmac_access_id": "HMAC access ID", "hmac_secret": "HMAC secret", "endpoint": "Endpoint", "format": "Format",
	"secret": "Signing secret", "headers": "Extra headers",
}

var fieldHints = map[string]string{
	"url":      "https:// address of the receiver.",
	"tags":     "Datadog tags, k:v,k:v.",
	"endpoint": "Only for an S3-compatible store other than AWS: its https:// address.",
	"prefix":   "Objects are written under this prefix, then YYYY/MM/DD/HH/.",
	"secret":   "whsec_… for Standard Webhooks signatures. Leave empty to have one generated.",
	"headers":  "One per line, Name: value (e.g. Authorization: Bearer …). Kept secret.",
	"format":   "json: one array a request; ndjson: one event a line.",
	"ack":      "Splunk HEC indexer acknowledgement: an event counts as delivered once indexed.",
}

// streamForm is the form of a stream type, filled from a stream (edit)
// or from a posted form (after an error).
func streamForm(typ string, st *trail.Stream, posted url.Values) *uiStreamForm {
	f := &uiStreamForm{Stream: st, Type: typ, Types: trail.StreamTypes}
	var masked map[string]any
	if st != nil {
		f.Name, masked = st.Name, st.Masked()
	}
	if posted != nil {
		f.Name = posted.Get("name")
	}
	for _, sf := range trail.StreamFields[typ] {
		fl := uiField{Name: sf.Name, Label: fieldLabels[sf.Name], Required: sf.Required, Secret: sf.Secret, Hint: fieldHints[sf.Name], Kind: "text"}
		switch {
		case sf.Name == "ack":
			fl.Kind = "checkbox"
		case sf.Name == "headers":
			fl.Kind = "textarea"
		case sf.Name == "site":
			fl.Kind, fl.Options = "select", trail.DatadogSites
		case sf.Name == "format":
			fl.Kind, fl.Options = "select", []string{"json", "ndjson"}
		case sf.Secret:
			fl.Kind = "password"
		case sf.Name == "url" || sf.Name == "endpoint":
			fl.Kind = "url"
		}
		if v, ok := masked[sf.Name]; ok && v != nil {
			switch v := v.(type) {
			case bool:
				fl.Checked = v
			case string:
				if sf.Secret {
					fl.Set = v != ""
				} else {
					fl.Value = v
				}
			case map[string]string:
				fl.Set = len(v) > 0
				fl.Value = headerLines(v)
			case map[string]any:
				fl.Set = len(v) > 0
				m := map[string]string{}
				for k, hv := range v {
					m[k] = fmt.Sprint(hv)
				}
				fl.Value = headerLines(m)
			}
		}
		if posted != nil {
			switch fl.Kind {
			case "checkbox":
				fl.Checked = posted.Get(sf.Name) == "on"
			case "password":
				// A secret typed in is not sent back to the browser.
			default:
				fl.Value = posted.Get(sf.Name)
			}
		}
		f.Fields = append(f.Fields, fl)
	}
	return f
}

func headerLines(h map[string]string) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, h[k])
	}
	return b.String()
}

// formConfig is the config of a posted stream form as the API takes it.
// A secret left empty on an existing stream keeps its value.
func formConfig(typ string, st *trail.Stream, form url.Values) (map[string]json.RawMessage, error) {
	config := map[string]json.RawMessage{}
	for _, sf := range trail.StreamFields[typ] {
		v := strings.TrimSpace(form.Get(sf.Name))
		var value any
		switch {
		case sf.Name == "ack":
			value = form.Get(sf.Name) == "on"
		case sf.Name == "headers":
			h := map[string]string{}
			for line := range strings.SplitSeq(form.Get(sf.Name), "\n") {
				line = strings.TrimSpace(line)
				if line == "" {
					continue
				}
				k, hv, ok := strings.Cut(line, ":")
				if !ok || strings.TrimSpace(k) == "" {
					return nil, uiInputError(fmt.Sprintf("Extra headers: %q is not Name: value", line))
				}
				h[strings.TrimSpace(k)] = strings.TrimSpace(hv)
			}
			value = h
		case sf.Secret && v == "" && st != nil && slices.Contains(st.SecretFields, sf.Name):
			value = trail.MaskedSecret
		default:
			value = v
		}
		b, err := json.Marshal(value)
		if err != nil {
			return nil, err
		}
		config[sf.Name] = b
	}
	return config, nil
}

// uiInputError is a form's input that cannot be read, said to the
// person who typed it.
type uiInputError string

func (e uiInputError) Error() string { return string(e) }

// formErrors puts a stream's error on the form: on the field it names,
// or at the top. It reports false for an error that is not the input's
// (the page fails instead).
func formErrors(f *uiStreamForm, err error) (status int, ok bool) {
	status, body := errorJSON(err)
	if status >= 500 {
		return status, false
	}
	placed := false
	ps := trail.ErrorProblems(err)
	for _, p := range ps {
		name, msg := strings.ReplaceAll(strings.TrimPrefix(p.Path, "/"), "/", "."), p.Message
		if trail.ErrorCode(err) == trail.EMALFORMED {
			msg = strings.ReplaceAll(p.Message, "_", " ")
		}
		name = strings.TrimPrefix(name, "config.")
		if name == "name" {
			f.NameError, placed = sentence("Name", msg), true
			f.Invalid = append(f.Invalid, uiFieldError{"f-name", f.NameError})
			continue
		}
		base, _, _ := strings.Cut(name, ".")
		for i := range f.Fields {
			if fl := &f.Fields[i]; fl.Name == base && fl.Error == "" {
				fl.Error, placed = sentence(fl.Label, msg), true
				f.Invalid = append(f.Invalid, uiFieldError{"f-" + fl.Name, fl.Error})
			}
		}
	}
	if !placed || len(ps) == 0 {
		f.Errors = append(f.Errors, body.Message)
	}
	return status, true
}

func (s *Server) uiNewStream(w http.ResponseWriter, r *http.Request, u *uiSession) {
	typ := r.URL.Query().Get("type")
	var f *uiStreamForm
	if _, ok := trail.StreamFields[typ]; ok {
		f = streamForm(typ, nil, nil)
	} else {
		f = &uiStreamForm{Types: trail.StreamTypes}
	}
	s.render(w, r, http.StatusOK, "stream", &uiPage{Title: "New log stream", Nav: "settings", Session: u, Data: f})
}

func (s *Server) uiCreateStream(w http.ResponseWriter, r *http.Request, u *uiSession) {
	typ := r.PostFormValue("type")
	if _, ok := trail.StreamFields[typ]; !ok {
		s.renderMessage(w, r, u, http.StatusBadRequest, "Unknown stream type", "Choose one of "+strings.Join(trail.StreamTypes, ", ")+".")
		return
	}
	f := streamForm(typ, nil, r.PostForm)
	page := &uiPage{Title: "New log stream", Nav: "settings", Session: u, Data: f}
	config, err := formConfig(typ, nil, r.PostForm)
	if err != nil {
		f.Errors = append(f.Errors, err.Error())
		s.render(w, r, http.StatusBadRequest, "stream", page)
		return
	}
	name := r.PostFormValue("name")
	st, secret, err := s.streamEditor().Create(u.withCaller(r), service.StreamInput{OrganizationID: u.OrganizationID, Type: typ, Name: &name, Config: config})
	if err != nil {
		if status, ok := formErrors(f, err); ok {
			s.render(w, r, status, "stream", page)
		} else {
			s.uiFail(w, r, u, err)
		}
		return
	}
	s.streamsChanged()
	if secret != "" {
		// Generated here: this page is the only time it is shown.
		page.Data, page.Title = &uiStreamForm{Stream: st, Type: typ, Secret: secret}, "Log stream created"
		page.Flash = uiDone["created"]
		s.render(w, r, http.StatusCreated, "created", page)
		return
	}
	http.Redirect(w, r, "/ui/settings?done=created", http.StatusSeeOther)
}

func (s *Server) uiEditStream(w http.ResponseWriter, r *http.Request, u *uiSession) {
	st, err := s.Streams.FindStreamByID(r.Context(), u.OrganizationID, r.PathValue("id"))
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	s.render(w, r, http.StatusOK, "stream", &uiPage{Title: "Edit " + st.Name, Nav: "settings", Session: u, Data: streamForm(st.Type, st, nil)})
}

func (s *Server) uiUpdateStream(w http.ResponseWriter, r *http.Request, u *uiSession) {
	st, err := s.Streams.FindStreamByID(r.Context(), u.OrganizationID, r.PathValue("id"))
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	f := streamForm(st.Type, st, r.PostForm)
	page := &uiPage{Title: "Edit " + st.Name, Nav: "settings", Session: u, Data: f}
	config, err := formConfig(st.Type, st, r.PostForm)
	if err != nil {
		f.Errors = append(f.Errors, err.Error())
		s.render(w, r, http.StatusBadRequest, "stream", page)
		return
	}
	name := r.PostFormValue("name")
	_, err = s.streamEditor().Update(u.withCaller(r), u.OrganizationID, st.ID, service.StreamInput{Name: &name, Config: config})
	if err != nil && !errors.Is(err, service.ErrUnchanged) {
		if status, ok := formErrors(f, err); ok {
			s.render(w, r, status, "stream", page)
		} else {
			s.uiFail(w, r, u, err)
		}
		return
	}
	if err == nil {
		s.streamsChanged()
	}
	http.Redirect(w, r, "/ui/settings?done=updated", http.StatusSeeOther)
}

// uiStreamOp is a stream's test, pause, resume or delete button.
func (s *Server) uiStreamOp(w http.ResponseWriter, r *http.Request, u *uiSession) {
	id, op := r.PathValue("id"), r.PathValue("op")
	ctx, e := u.withCaller(r), s.streamEditor()
	var err error
	switch op {
	case "pause":
		_, err = e.Pause(ctx, u.OrganizationID, id)
	case "resume":
		_, err = e.Resume(ctx, u.OrganizationID, id)
	case "delete":
		err = e.Delete(ctx, u.OrganizationID, id)
	case "test":
		s.uiTestStream(w, r, u, id)
		return
	default:
		s.renderMessage(w, r, u, http.StatusNotFound, "Page not found", "There is no such page in Trail's audit log.")
		return
	}
	if err != nil {
		s.uiStreamError(w, r, u, op, err)
		return
	}
	s.streamsChanged()
	done := map[string]string{"pause": "paused", "resume": "resumed", "delete": "deleted"}[op]
	http.Redirect(w, r, "/ui/settings?done="+done, http.StatusSeeOther)
}

// uiStreamError says why a stream's button changed nothing.
func (s *Server) uiStreamError(w http.ResponseWriter, r *http.Request, u *uiSession, op string, err error) {
	status, body := errorJSON(err)
	if status >= 500 {
		s.Logger.Error("ui: stream "+op, "status", status, "err", err, "request_id", r.Context().Value(requestIDKey))
		s.uiFail(w, r, u, err)
		return
	}
	s.renderMessage(w, r, u, status, "The stream was not changed", body.Message)
}

// uiTestStream sends a test event and shows the settings with its result.
func (s *Server) uiTestStream(w http.ResponseWriter, r *http.Request, u *uiSession, id string) {
	st, err := s.Streams.FindStreamByID(r.Context(), u.OrganizationID, id)
	if err != nil {
		s.uiStreamError(w, r, u, "test", err)
		return
	}
	res := s.testStream(u.withCaller(r), st)
	d, err := s.settingsData(r, u)
	if err != nil {
		s.uiFail(w, r, u, err)
		return
	}
	d.Test = &uiTestResult{Stream: st.Name, Success: res.Success, Error: res.Error}
	s.render(w, r, http.StatusOK, "settings", &uiPage{Title: "Settings", Nav: "settings", Session: u, Data: d})
}
