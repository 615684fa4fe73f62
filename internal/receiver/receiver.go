// Package receiver holds in-process receivers that speak the wire
// contracts of the log stream destinations that cannot run here — the
// Datadog logs intake v2 and Splunk's HTTP Event Collector — and a
// generic webhook endpoint. They enforce the documented contract (see
// docs/reference/streams.md in the shared docs), record what they accept
// and inject faults on demand; tests drive them with the vendors'
// official clients to keep them honest.
package receiver

import (
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Event is an audit event a receiver accepted: its id and index, as the
// payload carried them, and the event's JSON.
type Event struct {
	ID    string
	Index int64
	Raw   json.RawMessage
}

// Fault is an answer a receiver gives instead of accepting a request.
type Fault struct {
	Status int
	Header http.Header
	Body   string
}

// Base is what every receiver shares: the server, the accepted events,
// scripted faults and a delay.
type Base struct {
	Server *httptest.Server
	addr   string
	tls    bool

	mu       sync.Mutex // mu guards the fields below
	events   []Event
	requests int
	faults   []Fault
	delay    time.Duration
	down     bool
	handler  http.Handler
}

// start serves h on a loopback listener, over TLS when tls is set.
func (b *Base) start(h http.Handler, tls bool) {
	b.handler, b.tls = h, tls
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("receiver: listen: %v", err))
	}
	b.addr = ln.Addr().String()
	b.run(ln)
}

func (b *Base) run(ln net.Listener) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	srv.Listener.Close()
	srv.Listener = ln
	if b.tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	b.Server = srv
}

// Stop closes the receiver's listener: connections are refused until
// Restart.
func (b *Base) Stop() { b.Server.Close() }

// Restart listens again on the same address.
func (b *Base) Restart() error {
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		return err
	}
	b.run(ln)
	return nil
}

func (b *Base) serve(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.requests++
	delay, down := b.delay, b.down
	var fault *Fault
	if !down && len(b.faults) > 0 {
		fault = &b.faults[0]
		b.faults = b.faults[1:]
	}
	b.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if down {
		// Like a host that is gone: the connection closes without an
		// answer.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if fault != nil {
		for k, vs := range fault.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(fault.Status)
		io.WriteString(w, fault.Body)
		return
	}
	b.handler.ServeHTTP(w, r)
}

// URL is the receiver's base URL.
func (b *Base) URL() string { return b.Server.URL }

// Close stops the receiver.
func (b *Base) Close() { b.Server.Close() }

// Fail makes the next n requests get the fault.
func (b *Base) Fail(n int, f Fault) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range n {
		b.faults = append(b.faults, f)
	}
}

// SetDelay delays every answer by d.
func (b *Base) SetDelay(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.delay = d
}

// SetDown makes the receiver drop every connection (down) or serve
// again.
func (b *Base) SetDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

// Requests is how many requests arrived.
func (b *Base) Requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.requests
}

// Events returns the accepted events, in the order they arrived.
func (b *Base) Events() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Event(nil), b.events...)
}

func (b *Base) add(evs []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, evs...)
}

// Indexes returns the distinct indexes received, sorted, and how many
// arrived more than once.
func Indexes(evs []Event) (distinct []int64, repeats int) {
	seen := map[int64]bool{}
	for _, e := range evs {
		if seen[e.Index] {
			repeats++
			continue
		}
		seen[e.Index] = true
		distinct = append(distinct, e.Index)
	}
	sort.Slice(distinct, func(i, j int) bool { return distinct[i] < distinct[j] })
	return distinct, repeats
}

// CheckOrder returns an error unless the events arrived in index order:
// each index is the next after the one before, or a repeat of an earlier
// one that starts a batch sent again (at least once).
func CheckOrder(evs []Event) error {
	max := int64(-1)
	for i, e := range evs {
		if e.Index > max+1 && max >= 0 {
			return fmt.Errorf("event %d (index %d) arrived after index %d: a gap", i, e.Index, max)
		}
		if e.Index > max {
			max = e.Index
		}
	}
	return nil
}

// ParseEvent reads the id and index of an event's JSON.
func ParseEvent(raw []byte) (Event, error) {
	var e struct {
		ID    string `json:"id"`
		Index *int64 `json:"index"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return Event{}, err
	}
	if e.ID == "" || e.Index == nil {
		return Event{}, fmt.Errorf("event without id or index")
	}
	return Event{ID: e.ID, Index: *e.Index, Raw: append(json.RawMessage(nil), raw...)}, nil
}

// readBody reads a request body, decoding its Content-Encoding (gzip,
// deflate or identity).
func readBody(r *http.Request, limit int64) ([]byte, error) {
	var rd io.Reader = r.Body
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, err
		}
		rd = zr
	case "deflate":
		rd = flate.NewReader(r.Body)
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	b, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return b, errTooLarge
	}
	return b, nil
}

var errTooLarge = fmt.Errorf("body too large")

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Proxy passes requests to a real server (versitygw) and adds the faults
// of Base in front of it. The Host header is kept, so that signatures
// over it (SigV4) still hold.
type Proxy struct {
	Base
}

// NewProxy starts a proxy to target (a base URL).
func NewProxy(target string) *Proxy {
	u, err := url.Parse(target)
	if err != nil {
		panic(fmt.Sprintf("receiver: proxy target: %v", err))
	}
	p := &Proxy{}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host
	}}
	p.start(rp, false)
	return p
}
