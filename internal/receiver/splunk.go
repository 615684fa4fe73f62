package receiver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Splunk is a Splunk HTTP Event Collector: /services/collector/event
// (and its aliases /services/collector and /services/collector/event/1.0)
// takes concatenated JSON objects, each with "event", authenticated by
// "Authorization: Splunk <token>"; answers {"text","code"} with HEC's
// codes. With Ack, a request channel (a GUID) is required, every success
// carries an ackId, and /services/collector/ack answers true once per
// acknowledged id.
type Splunk struct {
	Base
	tokens []string
	// Ack turns indexer acknowledgement on.
	Ack bool
	// MaxBytes is the largest body accepted, uncompressed (413 above).
	MaxBytes int64

	mu      sync.Mutex // mu guards the fields below
	objects []map[string]any
	nextAck map[string]int64
	pending map[string]map[int64]bool
	hold    bool
	refused int // ack ids answered false
}

// NewSplunk starts a HEC that accepts the tokens.
func NewSplunk(tls, ack bool, tokens ...string) *Splunk {
	s := &Splunk{tokens: tokens, Ack: ack, MaxBytes: 1 << 20, nextAck: map[string]int64{}, pending: map[string]map[int64]bool{}}
	mux := http.NewServeMux()
	for _, p := range []string{"/services/collector", "/services/collector/event", "/services/collector/event/1.0"} {
		mux.HandleFunc("POST "+p, s.handleEvent)
	}
	mux.HandleFunc("POST /services/collector/ack", s.handleAck)
	mux.HandleFunc("GET /services/collector/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, hec{Text: "HEC is healthy", Code: 17})
	})
	s.start(mux, tls)
	return s
}

// Objects returns every event object accepted.
func (s *Splunk) Objects() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.objects...)
}

// HoldAcks makes the ack endpoint answer false (events not indexed yet)
// until called with false.
func (s *Splunk) HoldAcks(hold bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = hold
}

// RefusedAcks is how many ack ids the ack endpoint has answered false:
// a sender that asked again after a refusal has seen one.
func (s *Splunk) RefusedAcks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

type hec struct {
	Text               string `json:"text"`
	Code               int    `json:"code"`
	AckID              *int64 `json:"ackId,omitempty"`
	InvalidEventNumber *int   `json:"invalid-event-number,omitempty"`
}

var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// auth checks the token; it writes the refusal and returns false.
func (s *Splunk) auth(w http.ResponseWriter, r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Splunk ")
	switch {
	case h == "":
		writeJSON(w, http.StatusUnauthorized, hec{Text: "Token is required", Code: 2})
	case !ok:
		writeJSON(w, http.StatusUnauthorized, hec{Text: "Invalid authorization", Code: 3})
	case !slices.Contains(s.tokens, tok):
		writeJSON(w, http.StatusForbidden, hec{Text: "Invalid token", Code: 4})
	default:
		return true
	}
	return false
}

// channel checks the request channel when acks are on.
func (s *Splunk) channel(w http.ResponseWriter, r *http.Request) (string, bool) {
	ch := r.Header.Get("X-Splunk-Request-Channel")
	if ch == "" {
		ch = r.URL.Query().Get("channel")
	}
	if !s.Ack {
		return ch, true
	}
	switch {
	case ch == "":
		writeJSON(w, http.StatusBadRequest, hec{Text: "Data channel is missing", Code: 10})
	case !guid.MatchString(ch):
		writeJSON(w, http.StatusBadRequest, hec{Text: "Invalid data channel", Code: 11})
	default:
		return ch, true
	}
	return "", false
}

func (s *Splunk) handleEvent(w http.ResponseWriter, r *http.Request) {
	if !s.auth(w, r) {
		return
	}
	ch, ok := s.channel(w, r)
	if !ok {
		return
	}
	body, err := readBody(r, s.MaxBytes)
	if err == errTooLarge {
		writeJSON(w, http.StatusRequestEntityTooLarge, hec{Text: "Content too large", Code: 6})
		return
	} else if err != nil {
		writeJSON(w, http.StatusBadRequest, hec{Text: "Invalid data format", Code: 6})
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeJSON(w, http.StatusBadRequest, hec{Text: "No data", Code: 5})
		return
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var objs []map[string]any
	var evs []Event
	for i := 0; ; i++ {
		var o map[string]any
		err := dec.Decode(&o)
		if err == io.EOF {
			break
		}
		n := i
		if err != nil {
			writeJSON(w, http.StatusBadRequest, hec{Text: "Invalid data format", Code: 6, InvalidEventNumber: &n})
			return
		}
		ev, has := o["event"]
		if !has || ev == nil {
			writeJSON(w, http.StatusBadRequest, hec{Text: "Event field is required", Code: 12, InvalidEventNumber: &n})
			return
		}
		if str, isStr := ev.(string); isStr && strings.TrimSpace(str) == "" {
			writeJSON(w, http.StatusBadRequest, hec{Text: "Event field cannot be blank", Code: 13, InvalidEventNumber: &n})
			return
		}
		if t, has := o["time"]; has {
			var ts string
			switch v := t.(type) {
			case json.Number:
				ts = v.String()
			case string:
				ts = v
			}
			if _, err := strconv.ParseFloat(ts, 64); err != nil {
				writeJSON(w, http.StatusBadRequest, hec{Text: "Invalid data format", Code: 6, InvalidEventNumber: &n})
				return
			}
		}
		if f, has := o["fields"]; has {
			m, isMap := f.(map[string]any)
			for _, v := range m {
				if _, nested := v.(map[string]any); nested {
					isMap = false
				}
			}
			if !isMap {
				writeJSON(w, http.StatusBadRequest, hec{Text: "Error in handling indexed fields", Code: 15, InvalidEventNumber: &n})
				return
			}
		}
		objs = append(objs, o)
		if m, isMap := ev.(map[string]any); isMap {
			raw, _ := json.Marshal(m)
			if e, err := ParseEvent(raw); err == nil {
				evs = append(evs, e)
			}
		}
	}
	s.mu.Lock()
	s.objects = append(s.objects, objs...)
	var ackID *int64
	if s.Ack {
		id := s.nextAck[ch]
		s.nextAck[ch] = id + 1
		if s.pending[ch] == nil {
			s.pending[ch] = map[int64]bool{}
		}
		s.pending[ch][id] = true
		ackID = &id
	}
	s.mu.Unlock()
	s.add(evs)
	writeJSON(w, http.StatusOK, hec{Text: "Success", Code: 0, AckID: ackID})
}

func (s *Splunk) handleAck(w http.ResponseWriter, r *http.Request) {
	if !s.auth(w, r) {
		return
	}
	if !s.Ack {
		writeJSON(w, http.StatusBadRequest, hec{Text: "ACK is disabled", Code: 14})
		return
	}
	ch, ok := s.channel(w, r)
	if !ok {
		return
	}
	var req struct {
		Acks []int64 `json:"acks"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, hec{Text: "Invalid data format", Code: 6})
		return
	}
	s.mu.Lock()
	out := map[string]bool{}
	for _, id := range req.Acks {
		ok := !s.hold && s.pending[ch][id]
		if ok {
			delete(s.pending[ch], id) // true once, then forgotten
		} else {
			s.refused++
		}
		out[strconv.FormatInt(id, 10)] = ok
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"acks": out})
}
