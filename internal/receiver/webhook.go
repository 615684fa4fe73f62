package receiver

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
)

// Webhook is a generic HTTPS endpoint: it checks each request with
// Verify (the Standard Webhooks reference verifier, in tests), and takes
// a JSON array or NDJSON of {"event", …} elements.
type Webhook struct {
	Base
	// Verify checks a request's signature; nil accepts any.
	Verify func(body []byte, h http.Header) error
}

// NewWebhook starts a webhook receiver.
func NewWebhook(tls bool, verify func(body []byte, h http.Header) error) *Webhook {
	wh := &Webhook{Verify: verify}
	wh.start(http.HandlerFunc(wh.handle), tls)
	return wh
}

func (wh *Webhook) handle(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	body, err := readBody(r, 64<<20)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if wh.Verify != nil {
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
			return
		}
	}
	type element struct {
		Event json.RawMessage `json:"event"`
	}
	var elems []element
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-ndjson") {
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var e element
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				http.Error(w, "ndjson: "+err.Error(), http.StatusBadRequest)
				return
			}
			elems = append(elems, e)
		}
	} else if err := json.Unmarshal(body, &elems); err != nil {
		http.Error(w, "json: "+err.Error(), http.StatusBadRequest)
		return
	}
	var evs []Event
	for _, e := range elems {
		ev, err := ParseEvent(e.Event)
		if err != nil {
			http.Error(w, "event: "+err.Error(), http.StatusBadRequest)
			return
		}
		evs = append(evs, ev)
	}
	wh.add(evs)
	w.WriteHeader(http.StatusNoContent)
}
