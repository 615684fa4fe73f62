package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
)

// StreamEditor is how a person or a key changes log streams: the API's
// handlers and the web UI's forms both call it, so that a stream is
// checked, sealed and recorded by one set of rules (SPEC §10) whichever
// way it was changed. It works on any trail.StreamService.
type StreamEditor struct {
	Streams trail.StreamService
	// Events finds the first event at or after a replay's from_time.
	Events trail.EventService
	// AllowPlainHTTP lets a destination be http:// (tests, a receiver
	// on a private network the operator allowed).
	AllowPlainHTTP bool
	// CheckDestination refuses a destination host (on a private network,
	// say); nil checks nothing.
	CheckDestination func(host string) error
	// Seal seals a stream's secrets (Secrets into Sealed); Open opens
	// them for an update that keeps some.
	Seal, Open func(*trail.Stream) error
	// Now is the clock that names new streams; nil is time.Now.
	Now func() time.Time
}

// StreamInput is a stream as a caller writes it: Config holds the
// type's fields as JSON values (a secret sent back as
// trail.MaskedSecret keeps its value; null or "" clears an optional
// field). Name nil leaves an update's name as it is.
type StreamInput struct {
	OrganizationID string
	Type           string
	Name           *string
	Config         map[string]json.RawMessage
}

// ErrUnchanged is an update that would change nothing: nothing is
// recorded and the stream is as it was.
var ErrUnchanged = errors.New("the stream is unchanged")

var streamIDs = ident.NewGenerator()

func (e *StreamEditor) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// Create checks and stores a new stream. An HTTPS stream without a
// signing secret gets one generated, returned as generated: it is shown
// this once.
func (e *StreamEditor) Create(ctx context.Context, in StreamInput) (st *trail.Stream, generated string, err error) {
	if _, ok := trail.StreamFields[in.Type]; !ok {
		return nil, "", &trail.Error{Code: trail.EINVALID, Message: fmt.Sprintf("Invalid log stream type %q: %s.", in.Type, strings.Join(trail.StreamTypes, ", ")),
			Problems: []trail.Problem{{Path: "/type", Message: "must be one of " + strings.Join(trail.StreamTypes, ", ")}}}
	}
	st = &trail.Stream{OrganizationID: in.OrganizationID, Type: in.Type}
	if in.Name != nil {
		st.Name = strings.TrimSpace(*in.Name)
	}
	if err := ApplyStreamConfig(st, in.Config); err != nil {
		return nil, "", err
	}
	if st.Type == trail.StreamHTTPS {
		if st.Config.Format == "" {
			st.Config.Format = "json"
		}
		if st.Secrets.Secret == "" {
			st.Secrets.Secret = trail.NewWebhookSecret()
			generated = st.Secrets.Secret
		}
	}
	if err := e.validate(st); err != nil {
		return nil, "", err
	}
	st.ID = "als_" + streamIDs.New(e.now())
	if err := e.seal(st); err != nil {
		return nil, "", err
	}
	if err := e.Streams.CreateStream(ctx, st); err != nil {
		return nil, "", err
	}
	return st, generated, nil
}

// Update changes a stream's name and config. The event lists what
// really changed, compared in the transaction with the stream as
// stored: a field sent back as it reads (a secret masked) is no change,
// and an update that changes nothing returns the stream with
// ErrUnchanged.
func (e *StreamEditor) Update(ctx context.Context, orgID, id string, in StreamInput) (*trail.Stream, error) {
	md := trail.Metadata{}
	return e.change(ctx, orgID, id, trail.ActionStreamUpdated, md, func(st *trail.Stream) error {
		if e.Open == nil {
			return fmt.Errorf("no secret key to open the stream's secrets")
		}
		if err := e.Open(st); err != nil {
			return err
		}
		before := *st
		before.Secrets.Headers = maps.Clone(st.Secrets.Headers)
		if in.Name != nil {
			st.Name = strings.TrimSpace(*in.Name)
		}
		if err := ApplyStreamConfig(st, in.Config); err != nil {
			return err
		}
		if err := e.validate(st); err != nil {
			return err
		}
		changed := st.ChangedFields(&before)
		if len(changed) == 0 {
			return ErrUnchanged
		}
		md["changed"] = strings.Join(changed, ",")
		if st.State != trail.StreamInactive {
			st.State = trail.StreamActive // retried at once: the change may have fixed it
		}
		return e.seal(st)
	})
}

// Pause stops a stream's delivery; its events wait.
func (e *StreamEditor) Pause(ctx context.Context, orgID, id string) (*trail.Stream, error) {
	return e.change(ctx, orgID, id, trail.ActionStreamPaused, nil, func(st *trail.Stream) error {
		st.State = trail.StreamInactive
		return nil
	})
}

// Resume makes a paused stream deliver again from where it stopped.
func (e *StreamEditor) Resume(ctx context.Context, orgID, id string) (*trail.Stream, error) {
	return e.change(ctx, orgID, id, trail.ActionStreamResumed, nil, func(st *trail.Stream) error {
		st.State = trail.StreamActive
		return nil
	})
}

// Delete removes a stream and records log_stream.deleted.
func (e *StreamEditor) Delete(ctx context.Context, orgID, id string) error {
	return e.Streams.DeleteStream(ctx, orgID, id)
}

// Replay moves a stream's cursor back (or on) to fromIndex, or to the
// first event that occurred at or after fromTime: delivery goes on from
// there. Exactly one of them is given.
func (e *StreamEditor) Replay(ctx context.Context, orgID, id string, fromIndex *int64, fromTime *time.Time) (*trail.Stream, error) {
	if (fromIndex == nil) == (fromTime == nil) {
		return nil, trail.Malformed("from_index", "one_of_from_index_or_from_time_required")
	}
	md := trail.Metadata{}
	var from int64
	if fromIndex != nil {
		if *fromIndex < 0 {
			return nil, &trail.Error{Code: trail.EINVALID, Message: "from_index must be 0 or more.",
				Problems: []trail.Problem{{Path: "/from_index", Message: "must be 0 or more"}}}
		}
		from = *fromIndex
	} else {
		st, err := e.Streams.FindStreamByID(ctx, orgID, id)
		if err != nil {
			return nil, err
		}
		t := fromTime.UTC()
		if from, err = e.firstIndexFrom(ctx, st.OrganizationID, t, st.Cursor+st.Lag); err != nil {
			return nil, err
		}
		md["from_time"] = t.Format(time.RFC3339Nano)
	}
	md["from_index"] = json.Number(fmt.Sprint(from))
	return e.change(ctx, orgID, id, trail.ActionStreamReplayed, md, func(st *trail.Stream) error {
		md["previous_cursor"] = json.Number(fmt.Sprint(st.Cursor))
		if head := st.Cursor + st.Lag; from > head {
			return &trail.Error{Code: trail.EINVALID, Message: fmt.Sprintf("from_index %d is past the end of the log (%d events).", from, head),
				Problems: []trail.Problem{{Path: "/from_index", Message: "must be at most the log's size"}}}
		}
		st.Cursor = from
		return nil
	})
}

// change applies a change with its own event; a change that would change
// nothing returns the stream as it is with ErrUnchanged.
func (e *StreamEditor) change(ctx context.Context, orgID, id, action string, md trail.Metadata, apply func(*trail.Stream) error) (*trail.Stream, error) {
	st, err := e.Streams.UpdateStream(ctx, orgID, id, trail.StreamChange{Action: action, Metadata: md, Apply: apply})
	if errors.Is(err, ErrUnchanged) {
		if st, err = e.Streams.FindStreamByID(ctx, orgID, id); err == nil {
			return st, ErrUnchanged
		}
	}
	return st, err
}

// firstIndexFrom returns the lowest index of an event that occurred at or
// after t, or head (the log's size) when none did.
func (e *StreamEditor) firstIndexFrom(ctx context.Context, orgID string, t time.Time, head int64) (int64, error) {
	page, err := e.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: orgID, RangeStart: &t, Ascending: true, Limit: 1})
	if err != nil {
		return 0, err
	}
	if len(page.Events) > 0 {
		return page.Events[0].Index, nil
	}
	return head, nil
}

func (e *StreamEditor) seal(st *trail.Stream) error {
	if e.Seal == nil {
		return fmt.Errorf("no secret key to seal the stream's secrets")
	}
	return e.Seal(st)
}

// validate checks a stream's config and its destination.
func (e *StreamEditor) validate(st *trail.Stream) error {
	if ps := st.Validate(e.AllowPlainHTTP); len(ps) > 0 {
		msgs := make([]string, len(ps))
		for i, p := range ps {
			msgs[i] = strings.TrimPrefix(p.Path, "/") + " " + p.Message
		}
		return &trail.Error{Code: trail.EINVALID, Message: "Invalid log stream: " + strings.Join(msgs, "; ") + ".", Problems: ps}
	}
	if e.CheckDestination != nil {
		path := "/config/url"
		if st.Type == trail.StreamS3 || st.Type == trail.StreamGCS {
			path = "/config/endpoint"
		}
		if err := e.CheckDestination(st.Destination()); err != nil {
			return &trail.Error{Code: trail.EINVALID, Message: "Invalid log stream: " + err.Error() + ".",
				Problems: []trail.Problem{{Path: path, Message: err.Error()}}}
		}
	}
	return nil
}

// ApplyStreamConfig sets the config fields in raw on the stream. A
// secret given as trail.MaskedSecret keeps its value; null or "" clears
// an optional field.
func ApplyStreamConfig(st *trail.Stream, raw map[string]json.RawMessage) error {
	fields := trail.StreamFields[st.Type]
	c, sec := &st.Config, &st.Secrets
	strs := st.StringFields()
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		v := raw[name]
		if !slices.ContainsFunc(fields, func(f trail.StreamField) bool { return f.Name == name }) {
			return trail.Malformed("config."+name, "unknown_field")
		}
		null := string(v) == "null"
		switch name {
		case "ack":
			c.Ack = false
			if !null && json.Unmarshal(v, &c.Ack) != nil {
				return trail.Malformed("config.ack", "must_be_boolean")
			}
		case "headers":
			var h map[string]string
			if !null && json.Unmarshal(v, &h) != nil {
				return trail.Malformed("config.headers", "must_be_object_of_strings")
			}
			for k, hv := range h {
				if hv == trail.MaskedSecret {
					old, ok := sec.Headers[k]
					if !ok {
						return trail.Malformed("config.headers."+k, "masked_value_of_unknown_header")
					}
					h[k] = old
				}
			}
			sec.Headers = h
		default:
			var str string
			if !null && json.Unmarshal(v, &str) != nil {
				return trail.Malformed("config."+name, "must_be_string")
			}
			if str == trail.MaskedSecret && *strs[name] != "" {
				continue // the secret as it was read back: unchanged
			}
			*strs[name] = strings.TrimSpace(str)
		}
	}
	return nil
}
