package delivery

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/trail-audit/trail"
)

// Destination sends events to one stream's receiver.
type Destination interface {
	// Send delivers a prefix of events (at least one) and returns how
	// many it delivered: all of them, or fewer when a request's limits
	// were reached. A failure is a *Failure.
	Send(ctx context.Context, events []*trail.Event) (int, error)
	// MaxBatch is the most events one Send takes.
	MaxBatch() int
}

// Failure is a delivery the destination did not accept.
type Failure struct {
	// Permanent failures (refused credentials, a payload or config the
	// receiver rejects) put the stream in state invalid; the others in
	// error.
	Permanent bool
	// TooLarge asks for smaller batches.
	TooLarge bool
	// RetryAfter is the wait the receiver asked for, if it did.
	RetryAfter time.Duration
	// Message is what the tenant sees (last_error, a test's result): a
	// classified message (see Classify) or the receiver's own answer,
	// never the text of a transport error.
	Message string
	// Err, if set, is the error behind the failure, for the server's log
	// only.
	Err error
}

// Error returns the tenant's message.
func (f *Failure) Error() string { return f.Message }

// Unwrap returns the error behind the failure.
func (f *Failure) Unwrap() error { return f.Err }

// Detail is the failure for the server's log: its message and the error
// behind it.
func (f *Failure) Detail() string {
	if f.Err != nil && f.Err.Error() != f.Message {
		return f.Message + ": " + f.Err.Error()
	}
	return f.Message
}

// IsPermanent reports whether the failure puts a stream in state invalid.
func (f *Failure) IsPermanent() bool { return f.Permanent }

// failuref returns a retryable failure.
func failuref(format string, args ...any) *Failure {
	return &Failure{Message: fmt.Sprintf(format, args...)}
}

// asFailure turns any error into a Failure with a classified message: a
// transport error is retryable.
func asFailure(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return &Failure{Message: Classify(err), Err: err}
}

// eventJSON returns the event as streams carry it: the stored JSON, as
// every read API returns it (its id and index included).
func eventJSON(ev *trail.Event) string { return ev.Raw }

// receivedAt reads an event's received_at from its JSON.
func receivedAt(p *fastjson.Parser, ev *trail.Event) (time.Time, error) {
	v, err := p.Parse(ev.Raw)
	if err != nil {
		return time.Time{}, fmt.Errorf("event %s: %w", ev.ID, err)
	}
	t, err := time.Parse(time.RFC3339Nano, string(v.GetStringBytes("received_at")))
	if err != nil {
		return time.Time{}, fmt.Errorf("event %s: received_at: %w", ev.ID, err)
	}
	return t, nil
}

// bodySize estimates the bytes of a request of events, each wrapped in
// overhead bytes, up to limit: the body's buffer is allocated once.
func bodySize(events []*trail.Event, overhead, limit int) int {
	n := 64
	for _, ev := range events {
		n += len(ev.Raw) + overhead
		if n > limit {
			return limit + overhead
		}
	}
	return n
}

// gzipBytes compresses b at the fastest level.
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/4 + 64)
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// post sends one request and returns the response's status, headers and
// up to 64 KiB of its body.
func post(ctx context.Context, client *http.Client, url string, header http.Header, body []byte) (int, http.Header, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, &Failure{Permanent: true, Message: "the destination's URL is not valid", Err: err}
	}
	req.Header = header
	req.Header.Set("User-Agent", "Trail log streams")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			return 0, nil, nil, &Failure{Message: fmt.Sprintf("no answer within %s", RequestTimeout), Err: err}
		}
		return 0, nil, nil, asFailure(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // let the connection be reused
	return resp.StatusCode, resp.Header, b, nil
}

// httpFailure classifies a response that is not a success: 408, 429 and
// 5xx are retried (after Retry-After, or Datadog's X-RateLimit-Reset),
// 413 asks for smaller batches, every other status (401, 403, 400, a
// redirect) is permanent.
func httpFailure(status int, h http.Header, body []byte, now time.Time) *Failure {
	f := &Failure{Message: fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))}
	if s := snippet(body); s != "" {
		f.Message += ": " + s
	}
	switch {
	case status == http.StatusRequestEntityTooLarge:
		f.TooLarge = true
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		f.RetryAfter = retryAfter(h, now)
	default:
		f.Permanent = true
	}
	return f
}

// retryAfter reads Retry-After (seconds or an HTTP date) or, failing
// that, X-RateLimit-Reset (seconds, as Datadog sends it).
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0)
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return time.Duration(n) * time.Second
		}
	}
	return 0
}
