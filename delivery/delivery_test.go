package delivery_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/delivery"
	"github.com/trail-audit/trail/internal/receiver"
	"github.com/trail-audit/trail/internal/secretbox"
	"github.com/trail-audit/trail/internal/testwait"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/storetest"
)

// fixture is an organization on a SQLite database with a running
// delivery worker that trusts the test receivers' certificates.
type fixture struct {
	t       *testing.T
	events  trail.EventService
	streams trail.StreamService
	box     *secretbox.Box
	org     string
	worker  *delivery.Worker
	n       int

	mu   sync.Mutex     // mu guards idle
	idle map[string]int // the worker's idle turns, by stream (OnIdle)
}

func newFixture(t *testing.T, certs ...*x509.Certificate) *fixture {
	t.Helper()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "trail.db"))
	if err := db.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	org := &trail.Organization{Name: "Streams"}
	if err := service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations.CreateOrganization(context.Background(), org); err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	rand.Read(key[:])
	box, _ := secretbox.New(key[:])
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	f := &fixture{t: t, events: sqlite.NewEventService(db), streams: service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Streams, box: box, org: org.ID}
	client := delivery.NewClient(delivery.ClientOptions{AllowPrivate: true, RootCAs: pool})
	f.worker = &delivery.Worker{Streams: f.streams, Events: f.events, Open: box.OpenStream, PollInterval: 50 * time.Millisecond, Client: client}
	f.idle = map[string]int{}
	f.worker.OnIdle = func(id string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.idle[id]++
	}
	plain := &delivery.Worker{Client: client}
	f.worker.NewDestination = func(s *trail.Stream) (delivery.Destination, error) {
		if s.Type == trail.StreamSplunk {
			sp := delivery.NewSplunk(client, s)
			sp.AckInterval = 50 * time.Millisecond // not 2 s
			return sp, nil
		}
		return plain.Destination(s)
	}
	f.worker.Start(context.Background())
	t.Cleanup(f.worker.Stop)
	return f
}

// create stores the stream with its secrets sealed; it returns the index
// of its first event.
func (f *fixture) create(st *trail.Stream) int64 {
	f.t.Helper()
	st.OrganizationID = f.org
	st.ID = fmt.Sprintf("als_test_%d", time.Now().UnixNano())
	if st.Name == "" {
		st.Name = st.Type
	}
	if err := f.box.SealStream(st); err != nil {
		f.t.Fatal(err)
	}
	if err := f.streams.CreateStream(context.Background(), st); err != nil {
		f.t.Fatal(err)
	}
	f.worker.Changed()
	return st.Cursor
}

// update changes the stream's secrets or config as the API does.
func (f *fixture) update(id string, change func(st *trail.Stream)) {
	f.t.Helper()
	ctx := context.Background()
	_, err := f.streams.UpdateStream(ctx, f.org, id, trail.StreamChange{Action: trail.ActionStreamUpdated, Apply: func(st *trail.Stream) error {
		if err := f.box.OpenStream(st); err != nil {
			return err
		}
		change(st)
		st.State = trail.StreamActive
		return f.box.SealStream(st)
	}})
	if err != nil {
		f.t.Fatal(err)
	}
	f.worker.Changed()
}

// append adds n events and returns the index of the last.
func (f *fixture) append(n int) int64 {
	f.t.Helper()
	var last int64
	for i := 0; i < n; i += 500 {
		batch := make([]*trail.EventInput, 0, 500)
		for j := i; j < min(n, i+500); j++ {
			batch = append(batch, storetest.NewEvent(f.n))
			f.n++
		}
		res, err := f.events.AppendEvents(context.Background(), f.org, batch)
		if err != nil {
			f.t.Fatal(err)
		}
		last = res[len(res)-1].Index
		f.worker.Wake()
	}
	return last
}

// idleTurns is how many times the worker's loop for a stream has been
// about to wait having sent nothing.
func (f *fixture) idleTurns(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.idle[id]
}

// waitIdleTurn waits for a turn of the stream's loop that starts after
// the call and sends nothing: a full turn happened and did nothing.
func (f *fixture) waitIdleTurn(id string) {
	f.t.Helper()
	// The turn under way when called may have begun before it: wait for
	// the one after.
	n := f.idleTurns(id)
	testwait.For(f.t, 30*time.Second, "an idle turn of the stream's loop", func() bool { return f.idleTurns(id) > n })
}

func (f *fixture) stream(id string) *trail.Stream {
	f.t.Helper()
	st, err := f.streams.FindStreamByID(context.Background(), f.org, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// waitDelivered waits until the receiver has every index from first to
// last, and checks the order and the stream's cursor.
func (f *fixture) waitDelivered(rcv interface{ Events() []receiver.Event }, id string, first, last int64) {
	f.t.Helper()
	testwait.For(f.t, 60*time.Second, fmt.Sprintf("indexes %d to %d", first, last), func() bool {
		d, _ := receiver.Indexes(rcv.Events())
		return len(d) == int(last-first+1) && d[0] == first && d[len(d)-1] == last
	})
	if err := receiver.CheckOrder(rcv.Events()); err != nil {
		f.t.Fatal(err)
	}
	testwait.For(f.t, 10*time.Second, "the cursor", func() bool {
		st := f.stream(id)
		return st.Cursor == last+1 && st.Lag == 0 && st.State == trail.StreamActive
	})
}

// TestSign checks the signer against the Standard Webhooks test vector.
func TestSign(t *testing.T) {
	t.Parallel()
	key, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	got := delivery.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

// TestHTTPS delivers to a webhook endpoint that checks every request with
// the Standard Webhooks reference verifier, in both formats.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "ndjson"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			secret := trail.NewWebhookSecret()
			wh, err := standardwebhooks.NewWebhook(secret)
			if err != nil {
				t.Fatal(err)
			}
			var auth []string
			rcv := receiver.NewWebhook(true, func(body []byte, h http.Header) error {
				auth = append(auth, h.Get("Authorization"))
				if !strings.HasPrefix(h.Get("webhook-id"), "msg_") {
					return fmt.Errorf("webhook-id %q", h.Get("webhook-id"))
				}
				return wh.Verify(body, h)
			})
			defer rcv.Close()
			f := newFixture(t, rcv.Server.Certificate())
			st := &trail.Stream{Type: trail.StreamHTTPS, Config: trail.StreamConfig{URL: rcv.URL() + "/hook", Format: format},
				Secrets: trail.StreamSecrets{Secret: secret, Headers: map[string]string{"Authorization": "Bearer receiver-token"}}}
			first := f.create(st)
			last := f.append(2300)
			f.waitDelivered(rcv, st.ID, first, last)
			if rcv.Requests() < 3 {
				t.Fatalf("%d requests for 2,301 events: batches of at most 1,000", rcv.Requests())
			}
			for _, a := range auth {
				if a != "Bearer receiver-token" {
					t.Fatalf("Authorization header %q", a)
				}
			}
			// The payload carries the stored event: id, index, action.
			ev := rcv.Events()[1]
			var got map[string]any
			json.Unmarshal(ev.Raw, &got)
			if got["action"] == nil || got["organization_id"] != f.org || got["id"] != ev.ID {
				t.Fatalf("event %s", ev.Raw)
			}
		})
	}
}

// TestHTTPS_WrongSecret: a receiver that refuses the signature (401) puts
// the stream in state invalid; the right secret, set by an update, lets
// every event through.
func TestHTTPS_WrongSecret(t *testing.T) {
	t.Parallel()
	secret := trail.NewWebhookSecret()
	wh, _ := standardwebhooks.NewWebhook(secret)
	rcv := receiver.NewWebhook(true, wh.Verify)
	defer rcv.Close()
	f := newFixture(t, rcv.Server.Certificate())
	st := &trail.Stream{Type: trail.StreamHTTPS, Config: trail.StreamConfig{URL: rcv.URL()}, Secrets: trail.StreamSecrets{Secret: trail.NewWebhookSecret()}}
	first := f.create(st)
	last := f.append(50)
	testwait.For(t, 10*time.Second, "state invalid", func() bool { return f.stream(st.ID).State == trail.StreamInvalid })
	if s := f.stream(st.ID); !strings.Contains(s.LastError, "HTTP 401") || s.Cursor != first || s.RetryAt == nil {
		t.Fatalf("invalid stream %+v", s)
	}
	f.update(st.ID, func(st *trail.Stream) { st.Secrets.Secret = secret })
	f.waitDelivered(rcv, st.ID, first, last+1) // the update's own event too
}

// TestDatadog delivers to the Datadog intake receiver: gzip, at most
// 1,000 logs a request, the event in message, the stream's source,
// service, tags and hostname; each log decodes as the official client's
// HTTPLogItem.
func TestDatadog(t *testing.T) {
	t.Parallel()
	rcv := receiver.NewDatadog(true, "dd-key")
	defer rcv.Close()
	f := newFixture(t, rcv.Server.Certificate())
	st := &trail.Stream{Type: trail.StreamDatadog, Config: trail.StreamConfig{Site: "datadoghq.eu", URL: rcv.URL(), Service: "acme-audit",
		Source: "trail", Tags: "env:test,team:sec", Hostname: "trail-1"}, Secrets: trail.StreamSecrets{APIKey: "dd-key"}}
	first := f.create(st)
	last := f.append(2500)
	f.waitDelivered(rcv, st.ID, first, last)
	if rcv.Requests() < 3 {
		t.Fatalf("%d requests for 2,501 logs", rcv.Requests())
	}
	items := rcv.Items()
	b, _ := json.Marshal(items[0])
	var item datadogItem
	if err := json.Unmarshal(b, &item); err != nil {
		t.Fatal(err)
	}
	if item.Message == "" || item.Ddsource == nil || *item.Ddsource != "trail" || *item.Service != "acme-audit" || *item.Ddtags != "env:test,team:sec" ||
		*item.Hostname != "trail-1" || item.AdditionalProperties["event_id"] == nil {
		t.Fatalf("log item %s", b)
	}
	if got := delivery.DatadogURL(trail.StreamConfig{Site: "datadoghq.eu"}); got != "https://http-intake.logs.datadoghq.eu/api/v2/logs" {
		t.Fatalf("site URL %s", got)
	}
}

// TestSplunk delivers to the HEC receiver with indexer acknowledgement: a
// batch counts only once acknowledged.
func TestSplunk(t *testing.T) {
	t.Parallel()
	rcv := receiver.NewSplunk(true, true, "hec-token")
	defer rcv.Close()
	f := newFixture(t, rcv.Server.Certificate())
	st := &trail.Stream{Type: trail.StreamSplunk, Config: trail.StreamConfig{URL: rcv.URL(), Index: "audit", SourceType: "trail:audit", Ack: true},
		Secrets: trail.StreamSecrets{Token: "hec-token"}}
	rcv.HoldAcks(true)
	first := f.create(st)
	last := f.append(1500)
	testwait.For(t, 10*time.Second, "the unacknowledged batch", func() bool { return len(rcv.Events()) > 0 })
	// The sender asked again after an ack was refused: it has seen the
	// batch unacknowledged.
	testwait.For(t, 30*time.Second, "two refused acks", func() bool { return rcv.RefusedAcks() >= 2 })
	if s := f.stream(st.ID); s.Cursor != first {
		t.Fatalf("cursor moved to %d before the acknowledgement", s.Cursor)
	}
	rcv.HoldAcks(false)
	f.waitDelivered(rcv, st.ID, first, last)
	o := rcv.Objects()[0]
	if o["index"] != "audit" || o["sourcetype"] != "trail:audit" || o["source"] != "trail" || o["time"] == nil {
		t.Fatalf("HEC object %v", o)
	}
}

// TestSplunkURLs: the event and ack endpoints of a HEC URL, with and
// without a base path.
func TestSplunkURLs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, event, ack string }{
		{"https://splunk.example.com:8088", "https://splunk.example.com:8088/services/collector/event", "https://splunk.example.com:8088/services/collector/ack"},
		{"https://proxy.example.com/splunk/", "https://proxy.example.com/splunk/services/collector/event", "https://proxy.example.com/splunk/services/collector/ack"},
		{"https://h.example.com/services/collector/event/1.0", "https://h.example.com/services/collector/event/1.0", "https://h.example.com/services/collector/ack"},
	} {
		event := delivery.SplunkEventURL(c.in)
		if ack := delivery.SplunkAckURL(event); event != c.event || ack != c.ack {
			t.Errorf("%s: event %s, ack %s; want %s, %s", c.in, event, ack, c.event, c.ack)
		}
	}
}

// TestFaults: every destination, through 500s, 429 with Retry-After, a
// receiver that is down for a while and a slow one, ends with every
// event delivered in order, and shows the error while it lasts.
func TestFaults(t *testing.T) {
	t.Parallel()
	type rcv interface {
		Fail(int, receiver.Fault)
		SetDelay(time.Duration)
		Stop()
		Restart() error
		Events() []receiver.Event
		URL() string
		Close()
	}
	kinds := map[string]func(t *testing.T) (rcv, *x509.Certificate, *trail.Stream){
		"GenericHttps": func(t *testing.T) (rcv, *x509.Certificate, *trail.Stream) {
			r := receiver.NewWebhook(true, nil)
			return r, r.Server.Certificate(), &trail.Stream{Type: trail.StreamHTTPS, Config: trail.StreamConfig{URL: r.URL()}, Secrets: trail.StreamSecrets{Secret: trail.NewWebhookSecret()}}
		},
		"Datadog": func(t *testing.T) (rcv, *x509.Certificate, *trail.Stream) {
			r := receiver.NewDatadog(true, "k")
			return r, r.Server.Certificate(), &trail.Stream{Type: trail.StreamDatadog, Config: trail.StreamConfig{Site: "datadoghq.com", URL: r.URL()}, Secrets: trail.StreamSecrets{APIKey: "k"}}
		},
		"Splunk": func(t *testing.T) (rcv, *x509.Certificate, *trail.Stream) {
			r := receiver.NewSplunk(true, false, "t")
			return r, r.Server.Certificate(), &trail.Stream{Type: trail.StreamSplunk, Config: trail.StreamConfig{URL: r.URL()}, Secrets: trail.StreamSecrets{Token: "t"}}
		},
	}
	// The buckets: versitygw behind a proxy that injects the faults.
	bucket := func(typ string) func(t *testing.T) (rcv, *x509.Certificate, *trail.Stream) {
		return func(t *testing.T) (rcv, *x509.Certificate, *trail.Stream) {
			endpoint := startVersitygw(t)
			admin := s3Client(endpoint, gwAccess, gwSecret)
			if _, err := admin.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("faults")}); err != nil {
				t.Fatal(err)
			}
			p := receiver.NewProxy(endpoint)
			st := &trail.Stream{Type: typ, Config: trail.StreamConfig{Bucket: "faults", Region: "us-east-1", Endpoint: p.URL()}}
			if typ == trail.StreamS3 {
				st.Config.AccessKeyID, st.Secrets.SecretAccessKey = gwAccess, gwSecret
			} else {
				st.Config.HMACAccessID, st.Secrets.HMACSecret = gwAccess, gwSecret
			}
			return bucketProxy{p, objectEvents{t, admin, "faults", ""}}, nil, st
		}
	}
	kinds["S3"], kinds["GoogleCloudStorage"] = bucket(trail.StreamS3), bucket(trail.StreamGCS)
	for name, mk := range kinds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, cert, st := mk(t)
			defer r.Close()
			var certs []*x509.Certificate
			if cert != nil {
				certs = append(certs, cert)
			}
			f := newFixture(t, certs...)
			first := f.create(st)
			f.append(300)

			// 500s: state error with the answer, then it recovers.
			r.Fail(2, receiver.Fault{Status: 500, Body: `{"text":"Internal server error","code":8}`})
			last := f.append(300)
			testwait.For(t, 10*time.Second, "state error", func() bool { return f.stream(st.ID).State == trail.StreamError })
			if s := f.stream(st.ID); !strings.Contains(s.LastError, "HTTP 500") {
				t.Fatalf("last error %q", s.LastError)
			}
			f.waitDelivered(r, st.ID, first, last)

			// 429 with Retry-After: waits as asked.
			r.Fail(1, receiver.Fault{Status: 429, Header: http.Header{"Retry-After": {"2"}}})
			start := time.Now()
			last = f.append(10)
			f.waitDelivered(r, st.ID, first, last)
			if d := time.Since(start); d < 2*time.Second {
				t.Fatalf("delivered %s after a 429 asking for 2 s", d)
			}

			if name == "Datadog" {
				// Datadog's rate limit header, without Retry-After.
				r.Fail(1, receiver.Fault{Status: 429, Header: http.Header{"X-Ratelimit-Reset": {"2"}}})
				start := time.Now()
				last = f.append(10)
				f.waitDelivered(r, st.ID, first, last)
				if d := time.Since(start); d < 2*time.Second {
					t.Fatalf("delivered %s after a 429 with X-RateLimit-Reset: 2", d)
				}
			}

			// Down for a while (connections refused), then back.
			r.Stop()
			last = f.append(200)
			testwait.For(t, 10*time.Second, "state error while down", func() bool { return f.stream(st.ID).State == trail.StreamError })
			time.Sleep(time.Second)
			if err := r.Restart(); err != nil {
				t.Fatal(err)
			}
			f.waitDelivered(r, st.ID, first, last)

			// Slow: every answer takes 300 ms; nothing is lost.
			r.SetDelay(300 * time.Millisecond)
			last = f.append(1200)
			f.waitDelivered(r, st.ID, first, last)
			r.SetDelay(0)
		})
	}
}

// bucketProxy is versitygw behind a fault-injecting proxy; its events
// are the bucket's objects.
type bucketProxy struct {
	*receiver.Proxy
	objects objectEvents
}

func (b bucketProxy) Events() []receiver.Event { return b.objects.Events() }

// TestInvalidCredentials: each destination refuses wrong credentials
// (401/403) and the stream goes invalid; fixed by an update, it delivers.
func TestInvalidCredentials(t *testing.T) {
	t.Parallel()
	dd := receiver.NewDatadog(true, "right")
	defer dd.Close()
	hec := receiver.NewSplunk(true, false, "right")
	defer hec.Close()
	f := newFixture(t, dd.Server.Certificate(), hec.Server.Certificate())
	for _, c := range []struct {
		rcv  interface{ Events() []receiver.Event }
		st   *trail.Stream
		want string
		fix  func(*trail.Stream)
	}{
		{dd, &trail.Stream{Type: trail.StreamDatadog, Config: trail.StreamConfig{Site: "datadoghq.com", URL: dd.URL()}, Secrets: trail.StreamSecrets{APIKey: "wrong"}},
			"HTTP 403", func(s *trail.Stream) { s.Secrets.APIKey = "right" }},
		{hec, &trail.Stream{Type: trail.StreamSplunk, Config: trail.StreamConfig{URL: hec.URL()}, Secrets: trail.StreamSecrets{Token: "wrong"}},
			"HEC code 4", func(s *trail.Stream) { s.Secrets.Token = "right" }},
	} {
		first := f.create(c.st)
		last := f.append(20)
		testwait.For(t, 10*time.Second, c.st.Type+" invalid", func() bool { return f.stream(c.st.ID).State == trail.StreamInvalid })
		if s := f.stream(c.st.ID); !strings.Contains(s.LastError, c.want) {
			t.Fatalf("%s: last error %q, want %q", c.st.Type, s.LastError, c.want)
		}
		f.update(c.st.ID, c.fix)
		f.waitDelivered(c.rcv, c.st.ID, first, last+1)
	}
}

// TestCheckHost refuses private and loopback destinations unless allowed.
func TestCheckHost(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"127.0.0.1", "localhost", "10.1.2.3", "192.168.0.10", "169.254.169.254", "::1", "[::1]", "fd00::1", "0.0.0.0", "api.localhost"} {
		if delivery.CheckHost(h, false) == nil {
			t.Errorf("%s allowed", h)
		}
		if delivery.CheckHost(h, true) != nil {
			t.Errorf("%s refused with private destinations allowed", h)
		}
	}
	for _, h := range []string{"http-intake.logs.datadoghq.com", "8.8.8.8", "2001:4860:4860::8888"} {
		if err := delivery.CheckHost(h, false); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	// A name that resolves to loopback is refused when dialled.
	rcv := receiver.NewWebhook(false, nil)
	defer rcv.Close()
	client := delivery.NewClient(delivery.ClientOptions{})
	_, err := client.Post(strings.Replace(rcv.URL(), "127.0.0.1", "localhost", 1), "application/json", strings.NewReader("[]"))
	if err == nil || !strings.Contains(err.Error(), "private or loopback") {
		t.Fatalf("dial to localhost: %v", err)
	}
}

// TestUnopenableSecrets: a stream whose secrets do not open under this
// instance's key (sealed under another) is invalid, says why, and waits
// the longest backoff rather than spin.
func TestUnopenableSecrets(t *testing.T) {
	t.Parallel()
	rcv := receiver.NewWebhook(false, nil)
	defer rcv.Close()
	f := newFixture(t)
	var key [32]byte
	rand.Read(key[:])
	other, _ := secretbox.New(key[:])
	st := &trail.Stream{OrganizationID: f.org, ID: "als_other_key", Type: trail.StreamHTTPS, Name: "x",
		Config: trail.StreamConfig{URL: rcv.URL()}, Secrets: trail.StreamSecrets{Secret: trail.NewWebhookSecret()}}
	if err := other.SealStream(st); err != nil {
		t.Fatal(err)
	}
	if err := f.streams.CreateStream(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	f.worker.Changed()
	testwait.For(t, 10*time.Second, "state invalid", func() bool { return f.stream(st.ID).State == trail.StreamInvalid })
	s := f.stream(st.ID)
	if !strings.Contains(s.LastError, "not sealed with this secret key") || s.RetryAt == nil || time.Until(*s.RetryAt) < 4*time.Minute {
		t.Fatalf("stream %+v", s)
	}
	first := *s.LastErrorAt
	// Its loop waits for the retry time; a renewal (Changed) wakes it
	// for a turn that must not fail again.
	testwait.For(t, 30*time.Second, "the loop to wait for the retry time", func() bool { return f.idleTurns(st.ID) > 0 })
	f.worker.Changed()
	f.waitIdleTurn(st.ID)
	if s := f.stream(st.ID); !s.LastErrorAt.Equal(first) || len(rcv.Events()) != 0 {
		t.Fatalf("failed again at %v (first %v), %d events delivered", s.LastErrorAt, first, len(rcv.Events()))
	}
}
