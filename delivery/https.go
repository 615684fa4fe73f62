package delivery

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// Limits of a GenericHttps request.
const (
	HTTPSMaxEvents = 1000
	HTTPSMaxBytes  = 5 << 20
)

// HTTPS posts events to a generic HTTPS endpoint as a JSON array or as
// NDJSON, each element {"event", "keySuffix", "timestamp"} (WorkOS's
// shape), signed per Standard Webhooks 1.0: webhook-id (the same on
// every retry of a batch), webhook-timestamp and webhook-signature
// "v1,<base64 HMAC-SHA256 of id.timestamp.body>".
type HTTPS struct {
	Client   *http.Client
	StreamID string
	URL      string
	NDJSON   bool
	Secret   string // whsec_…
	Headers  map[string]string
	Now      func() time.Time

	key []byte
}

// NewHTTPS returns the destination of a GenericHttps stream.
func NewHTTPS(client *http.Client, s *trail.Stream) (*HTTPS, error) {
	d := &HTTPS{Client: client, StreamID: s.ID, URL: s.Config.URL, NDJSON: s.Config.Format == "ndjson",
		Secret: s.Secrets.Secret, Headers: s.Secrets.Headers, Now: time.Now}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(d.Secret, "whsec_"))
	if err != nil || !strings.HasPrefix(d.Secret, "whsec_") {
		return nil, &Failure{Permanent: true, Message: "the stream's secret is not a whsec_ secret"}
	}
	d.key = key
	return d, nil
}

// MaxBatch implements Destination.
func (d *HTTPS) MaxBatch() int { return HTTPSMaxEvents }

// Sign returns the webhook-signature of a message.
func Sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write(strconv.AppendInt(nil, ts, 10))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Send implements Destination.
func (d *HTTPS) Send(ctx context.Context, events []*trail.Event) (int, error) {
	body := make([]byte, 0, bodySize(events, 100, HTTPSMaxBytes))
	if !d.NDJSON {
		body = append(body, '[')
	}
	n := 0
	for _, ev := range events {
		start := len(body)
		if n > 0 && !d.NDJSON {
			body = append(body, ',')
		}
		body = append(body, `{"event":`...)
		body = append(body, eventJSON(ev)...)
		body = append(body, `,"keySuffix":"`...)
		body = append(body, ev.ID...)
		body = append(body, `","timestamp":"`...)
		body = ev.OccurredAt.UTC().AppendFormat(body, "2006-01-02T15:04:05.000Z07:00")
		body = append(body, `"}`...)
		if d.NDJSON {
			body = append(body, '\n')
		}
		if n > 0 && len(body) > HTTPSMaxBytes {
			body = body[:start]
			break
		}
		n++
	}
	if !d.NDJSON {
		body = append(body, ']')
	}
	id := fmt.Sprintf("msg_%s_%d_%d", d.StreamID, events[0].Index, events[n-1].Index)
	ts := d.Now().Unix()
	h := http.Header{}
	for name, v := range d.Headers {
		h.Set(name, v)
	}
	if d.NDJSON {
		h.Set("Content-Type", "application/x-ndjson")
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", Sign(d.key, id, ts, body))
	status, rh, rb, err := post(ctx, d.Client, d.URL, h, body)
	if err != nil {
		return 0, err
	}
	if status >= 200 && status < 300 {
		return n, nil
	}
	f := httpFailure(status, rh, rb, d.Now())
	if status == http.StatusGone {
		f.Permanent, f.Message = true, f.Message+" (the endpoint is gone)"
	}
	return 0, f
}
