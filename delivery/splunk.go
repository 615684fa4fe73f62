package delivery

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

// Limits and timings of Splunk HEC requests.
const (
	SplunkMaxEvents = 1000
	SplunkMaxBytes  = 1 << 20 // uncompressed, a default HEC accepts
	// SplunkAckInterval is how often indexer acknowledgements are polled.
	SplunkAckInterval = 2 * time.Second
	// SplunkAckTimeout is how long a batch waits for its acknowledgement
	// before it is sent again.
	SplunkAckTimeout = 5 * time.Minute
)

// Splunk posts events to a Splunk HTTP Event Collector: concatenated
// {"time": <occurred_at in seconds>, "source", "sourcetype", "index",
// "event": <event>} objects to /services/collector/event, gzipped, with
// "Authorization: Splunk <token>" and a request channel. With Ack, a batch
// counts as delivered only once /services/collector/ack says it is
// indexed.
type Splunk struct {
	Client                    *http.Client
	URL                       string // the event endpoint
	Token                     string
	Index, Source, SourceType string
	Ack                       bool
	AckInterval, AckTimeout   time.Duration
	Channel                   string
	Now                       func() time.Time
}

// SplunkEventURL is the event endpoint of a HEC URL: the URL itself when
// its path names the collector, else /services/collector/event on its
// host.
func SplunkEventURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || strings.Contains(u.Path, "/services/collector") {
		return raw
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/services/collector/event"
	return u.String()
}

// SplunkAckURL is the acknowledgement endpoint beside an event endpoint,
// under the same base path (a HEC behind a proxy may have one).
func SplunkAckURL(eventURL string) string {
	u, err := url.Parse(eventURL)
	if err != nil {
		return eventURL
	}
	base, _, _ := strings.Cut(u.Path, "/services/collector")
	u.Path = base + "/services/collector/ack"
	return u.String()
}

// NewSplunk returns the destination of a Splunk stream.
func NewSplunk(client *http.Client, s *trail.Stream) *Splunk {
	c := s.Config
	d := &Splunk{Client: client, URL: SplunkEventURL(c.URL), Token: s.Secrets.Token, Index: c.Index, Source: c.Source,
		SourceType: c.SourceType, Ack: c.Ack, AckInterval: SplunkAckInterval, AckTimeout: SplunkAckTimeout, Channel: newGUID(), Now: time.Now}
	if d.Source == "" {
		d.Source = "trail"
	}
	if d.SourceType == "" {
		d.SourceType = "_json"
	}
	return d
}

// newGUID returns a random UUID (version 4), a HEC request channel.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// MaxBatch implements Destination.
func (d *Splunk) MaxBatch() int { return SplunkMaxEvents }

// hecReply is the body of a HEC answer.
type hecReply struct {
	Text  string `json:"text"`
	Code  *int   `json:"code"`
	AckID *int64 `json:"ackId"`
}

// splunkRetryable are the HEC codes worth retrying: internal error, busy,
// and the unhealthy codes.
var splunkRetryable = map[int]bool{8: true, 9: true, 18: true, 19: true, 20: true}

func (d *Splunk) header() http.Header {
	h := http.Header{}
	h.Set("Authorization", "Splunk "+d.Token)
	h.Set("X-Splunk-Request-Channel", d.Channel)
	h.Set("Content-Type", "application/json")
	return h
}

// failure classifies a HEC answer that is not a success.
func (d *Splunk) failure(status int, h http.Header, body []byte) *Failure {
	f := httpFailure(status, h, body, d.Now())
	var r hecReply
	if json.Unmarshal(body, &r) == nil && r.Code != nil {
		f.Message = fmt.Sprintf("HTTP %d: HEC code %d: %s", status, *r.Code, snippet([]byte(r.Text)))
		if splunkRetryable[*r.Code] {
			f.Permanent = false
		}
	}
	return f
}

// Send implements Destination.
func (d *Splunk) Send(ctx context.Context, events []*trail.Event) (int, error) {
	var meta []byte
	meta = append(meta, `,"source":`...)
	meta = appendJSONString(meta, d.Source)
	meta = append(meta, `,"sourcetype":`...)
	meta = appendJSONString(meta, d.SourceType)
	if d.Index != "" {
		meta = append(meta, `,"index":`...)
		meta = appendJSONString(meta, d.Index)
	}
	body := make([]byte, 0, bodySize(events, 100+len(meta), SplunkMaxBytes))
	n := 0
	for _, ev := range events {
		start := len(body)
		ms := ev.OccurredAt.UnixMilli()
		body = append(body, `{"time":`...)
		body = strconv.AppendInt(body, ms/1000, 10)
		body = append(body, '.')
		body = append(body, fmt.Sprintf("%03d", ms%1000)...)
		body = append(body, meta...)
		body = append(body, `,"event":`...)
		body = append(body, eventJSON(ev)...)
		body = append(body, "}\n"...)
		if n > 0 && len(body) > SplunkMaxBytes {
			body = body[:start]
			break
		}
		n++
	}
	h := d.header()
	h.Set("Content-Encoding", "gzip")
	status, rh, rb, err := post(ctx, d.Client, d.URL, h, gzipBytes(body))
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, d.failure(status, rh, rb)
	}
	var r hecReply
	if err := json.Unmarshal(rb, &r); err != nil || r.Code == nil {
		return 0, failuref("HTTP 200 without a HEC answer: %s", snippet(rb))
	}
	if *r.Code != 0 {
		return 0, d.failure(status, rh, rb)
	}
	if !d.Ack {
		return n, nil
	}
	if r.AckID == nil {
		return 0, &Failure{Permanent: true, Message: "the stream asks for indexer acknowledgement, but the HEC token has it off (no ackId)"}
	}
	return n, d.waitAck(ctx, *r.AckID)
}

// waitAck polls the ack endpoint until the batch is indexed, or fails
// after AckTimeout so that the batch is sent again.
func (d *Splunk) waitAck(ctx context.Context, id int64) error {
	ackURL := SplunkAckURL(d.URL)
	deadline := d.Now().Add(d.AckTimeout)
	body := []byte(fmt.Sprintf(`{"acks":[%d]}`, id))
	for {
		t := time.NewTimer(d.AckInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		status, rh, rb, err := post(ctx, d.Client, ackURL, d.header(), body)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return d.failure(status, rh, rb)
		}
		var r struct {
			Acks map[string]bool `json:"acks"`
		}
		if err := json.Unmarshal(rb, &r); err != nil {
			return &Failure{Message: "HTTP 200: the acknowledgement answer is not JSON: " + snippet(rb), Err: err}
		}
		if r.Acks[strconv.FormatInt(id, 10)] {
			return nil
		}
		if d.Now().After(deadline) {
			return failuref("Splunk did not acknowledge the batch within %s: sending it again", d.AckTimeout)
		}
	}
}
