package delivery_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/delivery"
)

// internals are what a tenant must never see in a delivery error: the
// resolver and its port, Go's error text, and any IP address.
var internals = regexp.MustCompile(`lookup|:53\b|dial|tcp|read |write |x509|\d+\.\d+\.\d+\.\d+|\[?[0-9a-f]*::[0-9a-f:]*\]?|%`)

// checkPublic fails the test if a tenant's message shows internals.
func checkPublic(t *testing.T, what, msg string) {
	t.Helper()
	if m := internals.FindString(msg); m != "" {
		t.Errorf("%s: %q shows %q", what, msg, m)
	}
}

// closedPort returns an address on loopback where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// hangingServer accepts connections and never answers; they close when
// the test ends.
func hangingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
			close(done)
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// closingServer accepts connections and closes them at once, unanswered.
func closingServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// TestClassify: real delivery errors against loopback are classified by
// kind, and what the tenant sees (the Failure's Error, as last_error and
// a test's result show it) holds no resolver, address or Go error text,
// while the Failure's Detail, for the log, keeps the whole error.
func TestClassify(t *testing.T) {
	t.Parallel()
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plainSrv.Close()
	long := "<html>\x1b[31m" + strings.Repeat("internal error\x00\r\n\u202e ", 100) + "</html>"
	errSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, long, http.StatusInternalServerError)
	}))
	defer errSrv.Close()

	allowed := delivery.NewClient(delivery.ClientOptions{AllowPrivate: true})
	guarded := delivery.NewClient(delivery.ClientOptions{})
	impatient := delivery.NewClient(delivery.ClientOptions{AllowPrivate: true})
	impatient.Timeout = 200 * time.Millisecond
	for _, c := range []struct {
		name   string
		client *http.Client
		url    string
		want   string
	}{
		{"DNS", allowed, "https://nonexistent.invalid/hook", delivery.MsgDNS},
		{"Refused", allowed, "https://" + closedPort(t) + "/hook", delivery.MsgRefused},
		{"Reset", allowed, "http://" + closingServer(t) + "/hook", delivery.MsgReset},
		{"TLSUntrusted", allowed, tlsSrv.URL + "/hook", delivery.MsgTLSUntrusted},
		{"TLSHandshake", allowed, strings.Replace(plainSrv.URL, "http:", "https:", 1) + "/hook", delivery.MsgTLSHandshake},
		{"Timeout", impatient, "http://" + hangingServer(t) + "/hook", delivery.MsgTimeout},
		{"Private", guarded, plainSrv.URL + "/hook", delivery.MsgPrivate},
		{"PrivateZoned", guarded, "http://[::1%25lo]:" + strconv.Itoa(plainSrv.Listener.Addr().(*net.TCPAddr).Port) + "/hook", delivery.MsgPrivate},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The client's own error.
			resp, err := c.client.Post(c.url, "application/json", strings.NewReader("[]"))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("%s: no error", c.url)
			}
			if got := delivery.Classify(err); got != c.want {
				t.Errorf("Classify(%v) = %q, want %q", err, got, c.want)
			}
			// The same through a destination, as deliveries and tests see it.
			_, err = newHTTPS(t, c.client, c.url).Send(context.Background(), []*trail.Event{testEvent()})
			var f *delivery.Failure
			if !errors.As(err, &f) {
				t.Fatalf("Send: %T %v, want a *Failure", err, err)
			}
			if f.Error() != c.want {
				t.Errorf("Send: %q, want %q", f.Error(), c.want)
			}
			checkPublic(t, c.name, f.Error())
			if f.Err == nil || !strings.Contains(f.Detail(), f.Err.Error()) {
				t.Errorf("Detail %q lacks the error behind it", f.Detail())
			}
		})
	}

	t.Run("HTTPStatus", func(t *testing.T) {
		_, err := newHTTPS(t, allowed, errSrv.URL).Send(context.Background(), []*trail.Event{testEvent()})
		msg := delivery.Classify(err)
		if !strings.HasPrefix(msg, "HTTP 500 Internal Server Error: <html>[31minternal error internal error") || !strings.HasSuffix(msg, "…") {
			t.Errorf("message %q", msg)
		}
		body := strings.TrimSuffix(strings.TrimPrefix(msg, "HTTP 500 Internal Server Error: "), "…")
		if len(body) > 200 || len(body) < 150 {
			t.Errorf("the receiver's answer is %d bytes: %q", len(body), body)
		}
		if strings.ContainsAny(msg, "\x00\x1b\r\n\u202e") {
			t.Errorf("control characters in %q", msg)
		}
	})
	t.Run("S3", func(t *testing.T) {
		// The AWS SDK's transport errors are classified alike.
		for _, c := range []struct{ endpoint, want string }{
			{"https://" + closedPort(t), delivery.MsgRefused},
			{"https://nonexistent.invalid", delivery.MsgDNS},
			{tlsSrv.URL, delivery.MsgTLSUntrusted},
		} {
			d := delivery.NewBucket(allowed, &trail.Stream{ID: "als_test", OrganizationID: "org_test", Type: trail.StreamS3,
				Config: trail.StreamConfig{Bucket: "b", Region: "us-east-1", AccessKeyID: "a", Endpoint: c.endpoint}, Secrets: trail.StreamSecrets{SecretAccessKey: "s"}})
			_, err := d.Send(context.Background(), []*trail.Event{testEvent()})
			if msg := delivery.Classify(err); !strings.HasPrefix(msg, c.want) {
				t.Errorf("%s: %q, want %q", c.endpoint, msg, c.want)
			} else {
				checkPublic(t, c.endpoint, msg)
			}
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		if got := delivery.Classify(errors.New("open /var/lib/trail/secret.key: permission denied")); got != delivery.MsgUnknown {
			t.Errorf("an unknown error: %q", got)
		}
	})
}

func newHTTPS(t *testing.T, client *http.Client, url string) *delivery.HTTPS {
	t.Helper()
	d, err := delivery.NewHTTPS(client, &trail.Stream{ID: "als_test", Type: trail.StreamHTTPS,
		Config: trail.StreamConfig{URL: url}, Secrets: trail.StreamSecrets{Secret: trail.NewWebhookSecret()}})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func testEvent() *trail.Event {
	return &trail.Event{ID: "test_1", Index: -1, OccurredAt: time.Now(), Raw: `{"id":"test_1","received_at":"2026-12-01T00:00:00Z"}`}
}
