package delivery

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/trail-audit/trail"
)

// Limits of a Datadog logs intake v2 request.
const (
	DatadogMaxEvents = 1000
	DatadogMaxBytes  = 5 << 20 // uncompressed
)

// Datadog posts events to the Datadog logs intake v2: a gzipped JSON array
// of {"message": <event JSON>, "ddsource", "service", "ddtags",
// "hostname", "event_id"}, with DD-API-KEY. No timestamp is sent: Datadog
// drops logs dated more than 18 hours back, and a replayed or late event
// would be lost; the event's own occurred_at is in the message.
type Datadog struct {
	Client                          *http.Client
	URL                             string
	APIKey                          string
	Source, Service, Tags, Hostname string
	Now                             func() time.Time
}

// DatadogURL is the intake of a site, or of the stream's url.
func DatadogURL(c trail.StreamConfig) string {
	if c.URL == "" {
		return "https://http-intake.logs." + c.Site + "/api/v2/logs"
	}
	u, err := url.Parse(c.URL)
	if err == nil && (u.Path == "" || u.Path == "/") {
		u.Path = "/api/v2/logs"
		return u.String()
	}
	return c.URL
}

// NewDatadog returns the destination of a Datadog stream.
func NewDatadog(client *http.Client, s *trail.Stream) *Datadog {
	c := s.Config
	d := &Datadog{Client: client, URL: DatadogURL(c), APIKey: s.Secrets.APIKey, Source: c.Source, Service: c.Service,
		Tags: c.Tags, Hostname: c.Hostname, Now: time.Now}
	if d.Source == "" {
		d.Source = "trail"
	}
	if d.Service == "" {
		d.Service = "audit-logs"
	}
	return d
}

// MaxBatch implements Destination.
func (d *Datadog) MaxBatch() int { return DatadogMaxEvents }

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// Send implements Destination.
func (d *Datadog) Send(ctx context.Context, events []*trail.Event) (int, error) {
	var tail []byte
	tail = append(tail, `,"ddsource":`...)
	tail = appendJSONString(tail, d.Source)
	tail = append(tail, `,"service":`...)
	tail = appendJSONString(tail, d.Service)
	if d.Tags != "" {
		tail = append(tail, `,"ddtags":`...)
		tail = appendJSONString(tail, d.Tags)
	}
	if d.Hostname != "" {
		tail = append(tail, `,"hostname":`...)
		tail = appendJSONString(tail, d.Hostname)
	}
	body := make([]byte, 0, bodySize(events, 2*len(tail)+len(tail)+64, DatadogMaxBytes))
	body = append(body, '[')
	n := 0
	for _, ev := range events {
		start := len(body)
		if n > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"message":`...)
		body = appendJSONString(body, eventJSON(ev))
		body = append(body, tail...)
		body = append(body, `,"event_id":"`...)
		body = append(body, ev.ID...)
		body = append(body, `"}`...)
		if n > 0 && len(body)+1 > DatadogMaxBytes {
			body = body[:start]
			break
		}
		n++
	}
	body = append(body, ']')
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Encoding", "gzip")
	h.Set("DD-API-KEY", d.APIKey)
	status, rh, rb, err := post(ctx, d.Client, d.URL, h, gzipBytes(body))
	if err != nil {
		return 0, err
	}
	if status >= 200 && status < 300 {
		return n, nil
	}
	return 0, httpFailure(status, rh, rb, d.Now())
}
