package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ingest measures single events (batch false) or batches sent by
// concurrent clients for the configured duration.
func (r *runner) ingest(ctx context.Context, driver string, nodes int, batch bool) error {
	const orgs = 16
	t, srvs, stop, err := r.startOrgs(ctx, driver, nodes, "bench", orgs)
	if err != nil {
		return err
	}
	defer stop()
	c := r.c
	clients, name := c.Clients, fmt.Sprintf("single events, %d clients", c.Clients)
	if batch {
		clients, name = c.BatchClients, fmt.Sprintf("batches of %d, %d clients", c.BatchSize, c.BatchClients)
	}
	name += ", " + t.label()
	pool, _, err := eventPool(1, 2, 5000, func(i int) time.Time { return time.Now().UTC().Add(-time.Duration(i) * time.Millisecond) })
	if err != nil {
		return err
	}
	var lat latencies
	var events, failures atomic.Int64
	deadline := time.Now().Add(c.Duration)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			var buf bytes.Buffer
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				org := fmt.Sprintf("org_bench%02d", rng.IntN(orgs))
				n, path, hdr := 1, "/audit_logs/events", []string{"Idempotency-Key", fmt.Sprintf("w%d-%d", w, i)}
				if batch {
					n, path, hdr = c.BatchSize, "/audit_logs/events/batch", nil
					batchBody(&buf, org, fmt.Sprintf("w%d-%d", w, i), pool, n, rng)
				} else {
					buf.Reset()
					fmt.Fprintf(&buf, `{"organization_id":%q,"event":`, org)
					buf.Write(pool[rng.IntN(len(pool))])
					buf.WriteByte('}')
				}
				t0 := time.Now()
				code, b, err := r.do("POST", srvs[w%len(srvs)].url+path, buf.Bytes(), hdr...)
				lat.add(time.Since(t0))
				if err == nil && code == 200 && batch && bytes.Contains(b, []byte(`"error"`)) {
					code = 0
				}
				if err != nil || code != 200 {
					if failures.Add(1) < 3 {
						fmt.Fprintf(r.log, "request failed: %d %.200s %v\n", code, b, err)
					}
					continue
				}
				events.Add(int64(n))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(r.out, "ingest: %s\n  events/s %.0f   requests %d   failures %d\n  latency p50 %s   p95 %s   p99 %s\n  server peak RSS %.0f MiB\n\n",
		name, float64(events.Load())/elapsed.Seconds(), lat.count(), failures.Load(), ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), peakRSS(srvs))
	return nil
}

// batchBody writes into buf the body of a batch of n events of org,
// spliced from pre-encoded events so that the load generator spends little
// of the machine's cores; a unique idempotency key (key-<j>) makes each
// copy a distinct event.
func batchBody(buf *bytes.Buffer, org, key string, pool [][]byte, n int, rng *rand.Rand) {
	buf.Reset()
	fmt.Fprintf(buf, `{"organization_id":%q,"events":[`, org)
	for j := 0; j < n; j++ {
		if j > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(buf, `{"idempotency_key":"%s-%d",`, key, j)
		buf.Write(pool[rng.IntN(len(pool))][1:])
	}
	buf.WriteString(`]}`)
}

// accepted is a batch request of the lag scenario that the server took.
type accepted struct {
	last int64 // highest index of the request
	at   time.Time
	n    int
}

// sighting is when the poller first saw a checkpoint size.
type sighting struct {
	size int64
	at   time.Time
}

// lagPoller polls the checkpoints of the lag scenario's organizations.
type lagPoller struct {
	mu   sync.Mutex   // mu guards seen
	seen [][]sighting // seen[o] records when each checkpoint size of org o was first seen
	lat  latencies    // the polls' own durations
	stop chan struct{}
	wg   sync.WaitGroup
}

// pollCheckpoints starts one poller per organization, every interval.
func (r *runner) pollCheckpoints(srvs []*server, orgs int, interval time.Duration) *lagPoller {
	p := &lagPoller{seen: make([][]sighting, orgs), stop: make(chan struct{})}
	for o := 0; o < orgs; o++ {
		p.wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			last := int64(-1)
			for {
				select {
				case <-p.stop:
					return
				case <-t.C:
				}
				t0 := time.Now()
				code, b, err := r.do("GET", fmt.Sprintf("%s/audit_logs/checkpoint?organization_id=org_lag%02d", srvs[o%len(srvs)].url, o), nil)
				now := time.Now()
				p.lat.add(now.Sub(t0))
				if err != nil || code != 200 {
					continue
				}
				lines := strings.Split(string(b), "\n")
				size, _ := strconv.ParseInt(lines[1], 10, 64)
				if size > last {
					last = size
					p.mu.Lock()
					p.seen[o] = append(p.seen[o], sighting{size, now})
					p.mu.Unlock()
				}
			}
		})
	}
	return p
}

// lag sends events at a steady rate and measures, for each, the time from
// its acceptance (the response) to the first signed checkpoint that
// covers it, as seen by a client polling the checkpoint every 10 ms.
func (r *runner) lag(ctx context.Context, driver string, nodes int) error {
	const orgs, poll = 4, 10 * time.Millisecond
	t, srvs, stop, err := r.startOrgs(ctx, driver, nodes, "lag", orgs)
	if err != nil {
		return err
	}
	defer stop()
	c := r.c
	pool, _, err := eventPool(5, 6, 2000, func(int) time.Time { return time.Now().UTC() })
	if err != nil {
		return err
	}
	poller := r.pollCheckpoints(srvs, orgs, poll)
	// The load: rate/batch requests a second, spread over orgs × 4
	// clients, each on its own ticker.
	clients := orgs * 4
	interval := time.Duration(float64(time.Second) * float64(c.BatchSize*clients) / float64(c.LagRate))
	deadline := time.Now().Add(c.Duration)
	var mu sync.Mutex // mu guards acks
	acks := make([][]accepted, orgs)
	var wg sync.WaitGroup
	var failures atomic.Int64
	start := time.Now()
	for w := 0; w < clients; w++ {
		wg.Go(func() {
			o := w % orgs
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			t := time.NewTicker(interval)
			defer t.Stop()
			var buf bytes.Buffer
			for i := 0; time.Now().Before(deadline); i++ {
				<-t.C
				batchBody(&buf, fmt.Sprintf("org_lag%02d", o), fmt.Sprintf("l%d-%d", w, i), pool, c.BatchSize, rng)
				code, b, err := r.do("POST", srvs[w%len(srvs)].url+"/audit_logs/events/batch", buf.Bytes())
				at := time.Now()
				if err != nil || code != 200 {
					failures.Add(1)
					continue
				}
				a := acceptedBatch(b, at)
				mu.Lock()
				acks[o] = append(acks[o], a)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// Let the last events be integrated, then stop polling.
	time.Sleep(3 * time.Second)
	close(poller.stop)
	poller.wg.Wait()
	lat, events, missing := lagLatencies(acks, poller.seen)
	fmt.Fprintf(r.out, "lag: acceptance to a signed checkpoint, %d events/s asked in batches of %d, %s\n  events/s %.0f   failures %d   not in a checkpoint after 3 s: %d\n  lag p50 %s   p95 %s   p99 %s   max %s (seen by a client polling every %s; a poll took p50 %s, p99 %s)\n  server peak RSS %.0f MiB\n\n",
		c.LagRate, c.BatchSize, t.label(), float64(events)/elapsed.Seconds(), failures.Load(), missing, ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), ms(lat.pct(1)), poll, ms(poller.lat.pct(.5)), ms(poller.lat.pct(.99)), peakRSS(srvs))
	return nil
}

// acceptedBatch reads a batch response: how many events it accepted and
// the highest index among them.
func acceptedBatch(body []byte, at time.Time) accepted {
	var res struct {
		Data []struct {
			Index *int64 `json:"index"`
		} `json:"data"`
	}
	json.Unmarshal(body, &res)
	a := accepted{last: -1, at: at}
	for _, d := range res.Data {
		if d.Index != nil {
			a.last = max(a.last, *d.Index)
			a.n++
		}
	}
	return a
}

// lagLatencies matches each accepted batch of organization o with the
// first checkpoint seen that covers it: the lag of each of its events,
// how many events were accepted, and how many no checkpoint covered.
func lagLatencies(acks [][]accepted, seen [][]sighting) (lat *latencies, events, missing int) {
	lat = &latencies{}
	for o := range acks {
		for _, a := range acks[o] {
			events += a.n
			i := sort.Search(len(seen[o]), func(i int) bool { return seen[o][i].size > a.last })
			if i == len(seen[o]) {
				missing += a.n
				continue
			}
			d := max(seen[o][i].at.Sub(a.at), 0)
			for k := 0; k < a.n; k++ {
				lat.add(d)
			}
		}
	}
	return lat, events, missing
}
