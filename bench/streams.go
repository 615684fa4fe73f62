package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fastjson"
)

// receiver is the HTTPS endpoint of the streams scenario: it takes NDJSON
// batches and notes when each index arrived, and little else, so that it
// leaves the machine's cores to Trail.
type receiver struct {
	srv      *httptest.Server
	mu       sync.Mutex // mu guards arrived
	arrived  map[int64]time.Time
	requests atomic.Int64
}

func newReceiver() *receiver {
	r := &receiver{arrived: map[int64]time.Time{}}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serveHTTP))
	return r
}

func (r *receiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	var p fastjson.Parser
	sc := bufio.NewScanner(req.Body)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var idx []int64
	for sc.Scan() {
		v, err := p.ParseBytes(sc.Bytes())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		idx = append(idx, v.GetInt64("event", "index"))
	}
	r.mu.Lock()
	for _, i := range idx {
		if _, ok := r.arrived[i]; !ok {
			r.arrived[i] = now
		}
	}
	r.mu.Unlock()
	r.requests.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// distinct is how many indexes arrived.
func (r *receiver) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.arrived)
}

// reset forgets the indexes that arrived.
func (r *receiver) reset() {
	r.mu.Lock()
	r.arrived = map[int64]time.Time{}
	r.mu.Unlock()
}

// streams measures log stream delivery to a local HTTPS receiver: the
// throughput of a stream replaying a pre-loaded log, and the latency from
// acceptance to delivery under a steady StreamRate events a second.
func (r *runner) streams(ctx context.Context, driver string) error {
	t, cleanup, err := r.newTarget(ctx, driver, 1)
	if err != nil {
		return err
	}
	defer cleanup()
	rcv := newReceiver()
	defer rcv.srv.Close()
	caFile := filepath.Join(t.dir, "receiver-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rcv.srv.Certificate().Raw}), 0o600); err != nil {
		return err
	}
	srv, err := r.startServer(ctx, t.dir, t.url, "--allow-private-destinations", "--destination-ca-file", caFile)
	if err != nil {
		return err
	}
	defer srv.stop()
	pool, _, err := eventPool(3, 4, 2000, func(int) time.Time { return time.Now().UTC() })
	if err != nil {
		return err
	}
	for _, org := range []string{"org_stream_tp", "org_stream_lat"} {
		if err := r.createOrg(srv, org, org); err != nil {
			return err
		}
	}
	if err := r.streamThroughput(t, srv, rcv, pool); err != nil {
		return err
	}
	return r.streamLatency(t, srv, rcv, pool)
}

// createStream creates a GenericHttps stream of org to the receiver's
// path and returns its id and cursor.
func (r *runner) createStream(srv *server, rcv *receiver, org, path string) (id string, cursor int64, err error) {
	body, _ := json.Marshal(map[string]any{"organization_id": org, "type": "GenericHttps", "name": "bench",
		"config": map[string]any{"url": rcv.srv.URL + path, "format": "ndjson"}})
	code, b, err := r.do("POST", srv.url+"/audit_logs/streams", body)
	if err != nil || code != 201 {
		return "", 0, fmt.Errorf("create stream: %d %s %v", code, b, err)
	}
	var st struct {
		ID     string `json:"id"`
		Cursor int64  `json:"cursor"`
	}
	json.Unmarshal(b, &st)
	return st.ID, st.Cursor, nil
}

// preloadStream appends StreamEvents events to org_stream_tp through the
// API, from four clients in batches of 1000.
func (r *runner) preloadStream(srv *server, pool [][]byte) {
	var wg sync.WaitGroup
	var loaded atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Go(func() {
			var buf bytes.Buffer
			for i := 0; ; i++ {
				if loaded.Add(1000) > int64(r.c.StreamEvents) {
					return
				}
				buf.Reset()
				buf.WriteString(`{"organization_id":"org_stream_tp","events":[`)
				for j := 0; j < 1000; j++ {
					if j > 0 {
						buf.WriteByte(',')
					}
					fmt.Fprintf(&buf, `{"idempotency_key":"p%d-%d-%d",`, w, i, j)
					buf.Write(pool[(i*1000+j)%len(pool)][1:])
				}
				buf.WriteString(`]}`)
				if code, b, err := r.do("POST", srv.url+"/audit_logs/events/batch", buf.Bytes()); err != nil || code != 200 {
					fmt.Fprintf(r.log, "preload: %d %.200s %v\n", code, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// streamThroughput pre-loads the log, then has a stream replay all of it.
func (r *runner) streamThroughput(t target, srv *server, rcv *receiver, pool [][]byte) error {
	r.preloadStream(srv, pool)
	id, cursor, err := r.createStream(srv, rcv, "org_stream_tp", "/tp")
	if err != nil {
		return err
	}
	// Wait for the stream's own event, then replay from the start.
	for rcv.distinct() < 1 {
		time.Sleep(10 * time.Millisecond)
	}
	total := int(cursor) + 1
	// Let the background work of the pre-load (signing it into
	// checkpoints) finish first: it is not delivery's.
	for {
		code, b, err := r.do("GET", srv.url+"/audit_logs/checkpoint?organization_id=org_stream_tp", nil)
		if err != nil || (code != 200 && code != 404) { // 404: no checkpoint yet
			return fmt.Errorf("checkpoint: %d %s %v", code, b, err)
		}
		var size int
		if lines := bytes.Split(b, []byte("\n")); code == 200 && len(lines) > 1 {
			fmt.Sscan(string(lines[1]), &size)
		}
		if size >= total {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	if code, b, err := r.do("POST", srv.url+"/audit_logs/streams/"+id+"/replay", []byte(`{"from_index":0}`)); err != nil || code != 200 {
		return fmt.Errorf("replay: %d %s %v", code, b, err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for rcv.distinct() < total+1 && time.Now().Before(deadline) { // and the replay's own event
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	delivered := rcv.distinct()
	fmt.Fprintf(r.out, "streams: delivery of %d pre-loaded events to a local HTTPS receiver (GenericHttps, NDJSON, signed), %s\n  events/s %.0f   %d events in %s, %d requests\n  server peak RSS %.0f MiB\n\n",
		total, t.label(), float64(delivered)/elapsed.Seconds(), delivered, elapsed.Round(time.Millisecond), rcv.requests.Load(), srv.peakRSS())
	return nil
}

// streamLatency sends a steady StreamRate events a second, one event a
// request, and measures each event's time from acceptance to delivery.
func (r *runner) streamLatency(t target, srv *server, rcv *receiver, pool [][]byte) error {
	rcv.reset()
	if _, _, err := r.createStream(srv, rcv, "org_stream_lat", "/lat"); err != nil {
		return err
	}
	const clients = 50
	rate := r.c.StreamRate
	interval := time.Duration(float64(time.Second) * clients / float64(rate))
	var mu sync.Mutex // mu guards accepted
	accepted := map[int64]time.Time{}
	var failures atomic.Int64
	var wg sync.WaitGroup
	stopAt := time.Now().Add(r.c.Duration)
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			rng := rand.New(rand.NewPCG(uint64(w), 11))
			for i := 0; time.Now().Before(stopAt); i++ {
				<-t.C
				body := append([]byte(`{"organization_id":"org_stream_lat","event":`), pool[rng.IntN(len(pool))]...)
				body = append(body, '}')
				code, b, err := r.do("POST", srv.url+"/audit_logs/events", body, "Idempotency-Key", fmt.Sprintf("l%d-%d", w, i))
				at := time.Now()
				if err != nil || code != 200 {
					failures.Add(1)
					continue
				}
				var res struct {
					Index int64 `json:"index"`
				}
				json.Unmarshal(b, &res)
				mu.Lock()
				accepted[res.Index] = at
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	time.Sleep(3 * time.Second)
	var lat latencies
	missing := 0
	rcv.mu.Lock()
	for idx, at := range accepted {
		got, ok := rcv.arrived[idx]
		if !ok {
			missing++
			continue
		}
		lat.add(max(got.Sub(at), 0))
	}
	rcv.mu.Unlock()
	fmt.Fprintf(r.out, "streams: latency from acceptance to delivery, %d events/s asked, one event a request, %s\n  events/s %.0f   failures %d   not delivered after 3 s: %d\n  latency p50 %s   p95 %s   p99 %s   max %s\n  server peak RSS %.0f MiB\n\n",
		rate, t.label(), float64(len(accepted))/elapsed.Seconds(), failures.Load(), missing, ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), ms(lat.pct(1)), srv.peakRSS())
	return nil
}
