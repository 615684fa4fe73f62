package receiver

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
)

// Datadog is a Datadog logs intake v2 receiver: POST /api/v2/logs with
// DD-API-KEY (missing: 401, unknown: 403), gzip, deflate or no encoding,
// a JSON array of at most 1,000 logs (or one log object) of at most
// 5 MB uncompressed (else 413), each with a string "message" (else 400);
// 202 {} when accepted.
type Datadog struct {
	Base
	keys []string

	mu    sync.Mutex // mu guards items
	items []map[string]any
}

// Limits of the Datadog intake.
const (
	DatadogMaxBytes = 5 << 20
	DatadogMaxItems = 1000
)

// NewDatadog starts a Datadog receiver that accepts the API keys.
func NewDatadog(tls bool, keys ...string) *Datadog {
	d := &Datadog{keys: keys}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v2/logs", d.handleLogs)
	d.start(mux, tls)
	return d
}

// Items returns every log item accepted, as JSON objects.
func (d *Datadog) Items() []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]map[string]any(nil), d.items...)
}

func datadogError(w http.ResponseWriter, status int, title, detail string) {
	writeJSON(w, status, map[string]any{"errors": []map[string]string{{"status": http.StatusText(status), "title": title, "detail": detail}}})
}

func (d *Datadog) handleLogs(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("DD-API-KEY")
	switch {
	case key == "":
		datadogError(w, http.StatusUnauthorized, "Unauthorized", "API key missing")
		return
	case !slices.Contains(d.keys, key):
		datadogError(w, http.StatusForbidden, "Forbidden", "API key invalid")
		return
	}
	body, err := readBody(r, DatadogMaxBytes)
	if err == errTooLarge {
		datadogError(w, http.StatusRequestEntityTooLarge, "Payload Too Large", "payload exceeds 5MB uncompressed")
		return
	} else if err != nil {
		datadogError(w, http.StatusBadRequest, "Bad Request", err.Error())
		return
	}
	var items []map[string]any
	if len(body) > 0 && body[0] == '{' {
		var one map[string]any
		if err := json.Unmarshal(body, &one); err != nil {
			datadogError(w, http.StatusBadRequest, "Bad Request", "invalid JSON")
			return
		}
		items = []map[string]any{one}
	} else if err := json.Unmarshal(body, &items); err != nil {
		datadogError(w, http.StatusBadRequest, "Bad Request", "invalid JSON: want an array of logs")
		return
	}
	if len(items) > DatadogMaxItems {
		datadogError(w, http.StatusRequestEntityTooLarge, "Payload Too Large", "more than 1000 logs in one request")
		return
	}
	var evs []Event
	for _, it := range items {
		msg, ok := it["message"].(string)
		if !ok {
			datadogError(w, http.StatusBadRequest, "Bad Request", "message is required and must be a string")
			return
		}
		if ev, err := ParseEvent([]byte(msg)); err == nil {
			evs = append(evs, ev)
		}
	}
	d.mu.Lock()
	d.items = append(d.items, items...)
	d.mu.Unlock()
	d.add(evs)
	writeJSON(w, http.StatusAccepted, map[string]any{})
}
