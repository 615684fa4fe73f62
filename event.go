package trail

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits of SPEC §3. They are part of the wire contract.
const (
	MaxActionLength       = 128
	MaxActorIDLength      = 256
	MaxActorTypeLength    = 64
	MaxNameLength         = 256
	MaxTargets            = 50
	MaxLocationLength     = 256
	MaxUserAgentLength    = 1024
	MaxMetadataKeys       = 50
	MaxMetadataKeyLength  = 40
	MaxMetadataValueChars = 500
	MaxEventBytes         = 64 << 10 // one encoded event
	MaxRequestBytes       = 1 << 20  // one single-event request
	MaxBatchBytes         = 5 << 20  // one batch request
	MaxBatchEvents        = 1000
	MaxFutureSkew         = 5 * time.Minute
	IdempotencyWindow     = 24 * time.Hour
	DefaultRetentionDays  = 365
	MaxRetentionDays      = 3650

	// MaxSafeInteger is the largest magnitude a metadata number may have:
	// 2^53−1, the largest integer an IEEE double, and so the leaf hash's
	// RFC 8785 form, holds exactly (I-JSON, RFC 7493 §2.2). Beyond it a
	// number's last digits would be stored but not hashed.
	MaxSafeInteger = 1<<53 - 1
)

// Metadata holds flat key/value pairs. Values are string, json.Number or bool.
type Metadata map[string]any

// Actor is who did something.
type Actor struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	Name     string   `json:"name,omitempty"`
	Metadata Metadata `json:"metadata,omitempty"`
}

// Target is what something was done to. It has the same shape as [Actor].
type Target struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	Name     string   `json:"name,omitempty"`
	Metadata Metadata `json:"metadata,omitempty"`
}

// EventContext is where an event came from.
type EventContext struct {
	Location  string `json:"location"`
	UserAgent string `json:"user_agent,omitempty"`
}

// EventInput is an event as a client sends it, before Trail assigns an id
// and an index.
type EventInput struct {
	Action     string       `json:"action"`
	Version    int          `json:"version,omitempty"` // 0 means not given: version 1
	OccurredAt time.Time    `json:"occurred_at"`
	Actor      Actor        `json:"actor"`
	Targets    []Target     `json:"targets"`
	Context    EventContext `json:"context"`
	Metadata   Metadata     `json:"metadata,omitempty"`

	// IdempotencyKey is the client's key, if any. With a key, the same key
	// and the same event within IdempotencyWindow are one event; without
	// one, identical events within the window are.
	IdempotencyKey string `json:"-"`
	// Durable keeps the event's de-duplication entry for ever instead of
	// for IdempotencyWindow: trail import's events, whose key comes from
	// their source (its id, or its content), so that importing a file
	// again imports nothing new, however much later.
	Durable bool `json:"-"`
}

// DurableDedupe is the creation time recorded for a durable
// de-duplication entry (EventInput.Durable): the latest time there is,
// which every lookup finds live and no expiry ever reaches.
const DurableDedupe = math.MaxInt64

// Event is a stored event, as every read API returns it.
type Event struct {
	ID             string       `json:"id"`
	OrganizationID string       `json:"organization_id"`
	Index          int64        `json:"index"`
	Action         string       `json:"action"`
	Version        int          `json:"version"`
	OccurredAt     time.Time    `json:"occurred_at"`
	ReceivedAt     time.Time    `json:"received_at"`
	Actor          Actor        `json:"actor"`
	Targets        []Target     `json:"targets"`
	Context        EventContext `json:"context"`
	Metadata       Metadata     `json:"metadata,omitempty"`

	// Purged is set when retention removed the event's contents (SPEC
	// §6): only ID, OrganizationID, Index and PurgedLeafHash remain, and the
	// event reads as {"id", "index", "purged": true}.
	Purged         bool   `json:"-"`
	PurgedLeafHash []byte `json:"-"` // of a purged event: its leaf hash, kept in the tree

	// Raw is the stored JSON, of an event read with EventFilter.Raw.
	Raw string `json:"-"`
}

// AppendResult is the outcome of appending one event. Err is set, with an
// *Error, when that event alone was rejected.
type AppendResult struct {
	ID        string
	Index     int64
	Duplicate bool // the event was stored before, within the idempotency window
	Err       error
}

// EventFilter selects events of one organization (SPEC §7). Events are
// ordered by Index; cursors are indexes.
type EventFilter struct {
	OrganizationID string     `json:"organization_id"`
	Actions        []string   `json:"actions,omitempty"` // exact names, or prefixes written "name.*"
	ActorIDs       []string   `json:"actor_ids,omitempty"`
	ActorNames     []string   `json:"actor_names,omitempty"`
	ActorTypes     []string   `json:"actor_types,omitempty"`
	TargetIDs      []string   `json:"target_ids,omitempty"`
	TargetTypes    []string   `json:"targets,omitempty"`
	RangeStart     *time.Time `json:"range_start,omitempty"` // inclusive, on occurred_at
	RangeEnd       *time.Time `json:"range_end,omitempty"`   // exclusive, on occurred_at
	Query          string     `json:"q,omitempty"`           // words that must all appear
	Limit          int        `json:"-"`
	Before         *int64     `json:"-"` // page towards the start of Order from this index (exclusive)
	After          *int64     `json:"-"` // page towards the end of Order from this index (exclusive)
	Ascending      bool       `json:"-"` // false: newest (highest index) first
	// Raw asks for the events as stored: each Event has its ID, Index,
	// OccurredAt and Raw (the stored JSON) only, which spares decoding
	// (exports, streams). An
	// After cursor of a Raw read need not be an event any more (retention
	// may purge it while an export reads on): the page starts after it. A
	// Raw read of a period goes in index order with the period as a
	// condition on each row: an export reads all of it, page after page.
	Raw bool `json:"-"`
}

// HasContentFilter reports whether the filter selects by anything but
// the organization and the period.
func (f *EventFilter) HasContentFilter() bool {
	return len(f.Actions)+len(f.ActorIDs)+len(f.ActorNames)+len(f.ActorTypes)+len(f.TargetIDs)+len(f.TargetTypes) > 0 || f.Query != ""
}

// EventPage is one page of a query. HasMore reports whether more events
// match in the direction of travel (after, or before when Before was set).
type EventPage struct {
	Events  []*Event
	HasMore bool
}

// EventService stores and finds events.
type EventService interface {
	// AppendEvents stores events of one organization. Each event is
	// accepted or rejected on its own; results come in input order. When
	// it returns, every accepted event MUST be durable (fsync'd). Events of
	// one call get consecutive indexes in input order. Returns ENOTFOUND
	// for an unknown organization and EUNAVAILABLE when overloaded.
	AppendEvents(ctx context.Context, orgID string, events []*EventInput) ([]AppendResult, error)

	// FindEventByID returns one event of the organization (of any
	// organization when orgID is ""), or ENOTFOUND.
	FindEventByID(ctx context.Context, orgID, id string) (*Event, error)

	// FindEvents returns a page of events matching the filter.
	FindEvents(ctx context.Context, filter EventFilter) (*EventPage, error)
}

// EventCounter counts events for the histogram of the web UI (SPEC §9).
type EventCounter interface {
	// CountEvents counts the events matching f (its cursors and limit
	// ignored) that occurred from f.RangeStart to f.RangeEnd, which must
	// both be set, in buckets of width bucket aligned on the Unix epoch:
	// element i counts the events of [b+i·bucket, b+(i+1)·bucket) within
	// the period, where b is f.RangeStart truncated to a multiple of
	// bucket. The first and the last bucket may be partly outside the
	// period; only what lies within counts.
	CountEvents(ctx context.Context, f EventFilter, bucket time.Duration) ([]int64, error)
}

// Buckets returns how many buckets of width bucket the period of f
// touches (EventCounter), or an error when the period or the width cannot
// make a histogram.
func Buckets(f EventFilter, bucket time.Duration) (int, error) {
	if f.RangeStart == nil || f.RangeEnd == nil || !f.RangeEnd.After(*f.RangeStart) || bucket <= 0 ||
		f.RangeStart.Before(time.Unix(0, 0)) || f.RangeEnd.After(time.Unix(0, math.MaxInt64)) {
		return 0, Errorf(EINVALID, "A histogram needs a period between 1970 and 2262 (range_start before range_end) and a bucket width.")
	}
	w := int64(bucket)
	n := (f.RangeEnd.UnixNano()-1)/w - f.RangeStart.UnixNano()/w + 1
	if n <= 0 || n > 10000 {
		return 0, Errorf(EINVALID, "A histogram has at most 10,000 buckets.")
	}
	return int(n), nil
}

// Normalize applies the defaults of SPEC §3: version 1 and UTC times.
func (in *EventInput) Normalize() {
	if in.Version == 0 {
		in.Version = 1
	}
	in.OccurredAt = in.OccurredAt.UTC()
	canonicalNumbers(in.Actor.Metadata)
	for i := range in.Targets {
		canonicalNumbers(in.Targets[i].Metadata)
	}
	canonicalNumbers(in.Metadata)
}

// canonicalNumbers rewrites each number of md that Validate accepts in
// the form its leaf hash covers (RFC 8785: 1.0 and 1e0 are stored as 1),
// so that the stored document and the leaf hash say the same (SPEC §3).
// Numbers Validate refuses are left as sent, for its message.
func canonicalNumbers(md Metadata) {
	for k, v := range md {
		if n, ok := v.(json.Number); ok {
			if f, ok := safeNumber(n); ok {
				md[k] = json.Number(appendCanonicalNumber(nil, f))
			}
		}
	}
}

// safeNumber returns the value of a JSON number literal, and whether it is
// one that Validate accepts: finite, and at most MaxSafeInteger in
// magnitude.
func safeNumber(n json.Number) (float64, bool) {
	// ParseFloat also takes "NaN", "Inf" and hex floats, which are not
	// JSON numbers.
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || !json.Valid([]byte(n)) {
		return 0, false
	}
	return f, math.Abs(f) <= MaxSafeInteger
}

// unsafeNumber is the problem of a number beyond MaxSafeInteger.
const unsafeNumber = "must be a number from -9007199254740991 to 9007199254740991 (2^53-1, I-JSON, RFC 7493): a larger one loses digits in the leaf hash; send it as a string"

// Validate checks the rules of SPEC §3 that need no schema and returns one
// problem per broken rule, with JSON pointers into the event. now is the
// receiving time; retention is the organization's retention period.
func (in *EventInput) Validate(now time.Time, retentionDays int) []Problem {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	switch n := utf8.RuneCountInString(in.Action); {
	case n == 0:
		add("/action", "must be present")
	case n > MaxActionLength:
		add("/action", "must be at most %d characters", MaxActionLength)
	case !validAction(in.Action):
		add("/action", "must contain only letters, digits, '_', '.', ':' and '-'")
	}
	if in.Version < 0 {
		add("/version", "must be an integer of at least 1")
	}
	if in.OccurredAt.IsZero() {
		add("/occurred_at", "must be present")
	} else if in.OccurredAt.After(now.Add(MaxFutureSkew)) {
		add("/occurred_at", "must not be more than 5 minutes in the future")
	} else if retentionDays > 0 && in.OccurredAt.Before(now.Add(-time.Duration(retentionDays)*24*time.Hour)) {
		add("/occurred_at", "must not be older than the organization's retention period of %d days", retentionDays)
	}
	validateParty(&ps, "/actor", in.Actor.ID, in.Actor.Type, in.Actor.Name, in.Actor.Metadata)
	switch n := len(in.Targets); {
	case in.Targets == nil:
		add("/targets", "must be an array of 1 to %d targets", MaxTargets)
	case n == 0:
		add("/targets", "must contain at least 1 target")
	case n > MaxTargets:
		add("/targets", "must contain at most %d targets", MaxTargets)
	}
	for i, t := range in.Targets {
		validateParty(&ps, "/targets/"+strconv.Itoa(i), t.ID, t.Type, t.Name, t.Metadata)
	}
	switch n := utf8.RuneCountInString(in.Context.Location); {
	case n == 0:
		add("/context/location", "must be present")
	case n > MaxLocationLength:
		add("/context/location", "must be at most %d characters", MaxLocationLength)
	}
	if utf8.RuneCountInString(in.Context.UserAgent) > MaxUserAgentLength {
		add("/context/user_agent", "must be at most %d characters", MaxUserAgentLength)
	}
	validText(&ps, "/context/location", in.Context.Location)
	validText(&ps, "/context/user_agent", in.Context.UserAgent)
	ValidateMetadata(&ps, "/metadata", in.Metadata)
	return ps
}

func validateParty(ps *[]Problem, path, id, typ, name string, md Metadata) {
	add := func(p, msg string) { *ps = append(*ps, Problem{Path: path + p, Message: msg}) }
	switch n := utf8.RuneCountInString(id); {
	case n == 0:
		add("/id", "must be present")
	case n > MaxActorIDLength:
		add("/id", fmt.Sprintf("must be at most %d characters", MaxActorIDLength))
	}
	switch n := utf8.RuneCountInString(typ); {
	case n == 0:
		add("/type", "must be present")
	case n > MaxActorTypeLength:
		add("/type", fmt.Sprintf("must be at most %d characters", MaxActorTypeLength))
	}
	if utf8.RuneCountInString(name) > MaxNameLength {
		add("/name", fmt.Sprintf("must be at most %d characters", MaxNameLength))
	}
	validText(ps, path+"/id", id)
	validText(ps, path+"/type", typ)
	validText(ps, path+"/name", name)
	ValidateMetadata(ps, path+"/metadata", md)
}

// validText refuses text that would not be stored as it was sent:
// invalid UTF-8 (which includes a surrogate code point encoded on its
// own), which JSON readers turn into U+FFFD, and the NUL character
// (U+0000), which no database text column holds (SPEC §3).
func validText(ps *[]Problem, path, s string) {
	if !utf8.ValidString(s) {
		*ps = append(*ps, Problem{Path: path, Message: InvalidTextMessage})
	} else if strings.IndexByte(s, 0) >= 0 {
		*ps = append(*ps, Problem{Path: path, Message: "must not contain the NUL character (U+0000)"})
	}
}

// InvalidTextMessage is the problem of a string that is not valid UTF-8
// text: invalid bytes, or a lone surrogate such as "\ud800".
const InvalidTextMessage = "must be valid UTF-8 text: no invalid bytes and no lone surrogates (such as \\ud800)"

// ValidateMetadata appends the problems of one metadata object to ps.
func ValidateMetadata(ps *[]Problem, path string, md Metadata) {
	if md == nil {
		return
	}
	if len(md) > MaxMetadataKeys {
		*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf("must have at most %d keys", MaxMetadataKeys)})
	}
	for k, v := range md {
		p := path + "/" + EscapePointer(k)
		if !validMetadataKey(k) {
			*ps = append(*ps, Problem{Path: p, Message: "key must be 1 to 40 characters of letters, digits, '_' and '-'"})
			continue
		}
		switch v := v.(type) {
		case string:
			validText(ps, p, v)
			if utf8.RuneCountInString(v) > MaxMetadataValueChars {
				*ps = append(*ps, Problem{Path: p, Message: fmt.Sprintf("must be at most %d characters", MaxMetadataValueChars)})
			}
		case json.Number:
			if _, ok := safeNumber(v); !ok {
				if f, err := strconv.ParseFloat(string(v), 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) && json.Valid([]byte(v)) {
					*ps = append(*ps, Problem{Path: p, Message: unsafeNumber})
				} else {
					*ps = append(*ps, Problem{Path: p, Message: "must be a finite number"})
				}
			}
		case float64:
			if math.IsInf(v, 0) || math.IsNaN(v) {
				*ps = append(*ps, Problem{Path: p, Message: "must be a finite number"})
			} else if math.Abs(v) > MaxSafeInteger {
				*ps = append(*ps, Problem{Path: p, Message: unsafeNumber})
			}
		case bool:
		case int:
			if int64(v) > MaxSafeInteger || int64(v) < -MaxSafeInteger {
				*ps = append(*ps, Problem{Path: p, Message: unsafeNumber})
			}
		case int64:
			if v > MaxSafeInteger || v < -MaxSafeInteger {
				*ps = append(*ps, Problem{Path: p, Message: unsafeNumber})
			}
		default:
			*ps = append(*ps, Problem{Path: p, Message: "must be a string, a number or a boolean"})
		}
	}
}

// EscapePointer escapes one JSON Pointer token (RFC 6901): "~" as "~0"
// and "/" as "~1".
func EscapePointer(token string) string {
	return pointerEscaper.Replace(token)
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func validAction(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func validMetadataKey(s string) bool {
	if len(s) == 0 || len(s) > MaxMetadataKeyLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidAction reports whether s is a well-formed action name.
func ValidAction(s string) bool {
	n := utf8.RuneCountInString(s)
	return n >= 1 && n <= MaxActionLength && validAction(s)
}

// DedupeKey returns the hash under which an event of an organization is
// de-duplicated: the client's idempotency key combined with the event, or
// the event alone when there is no key (SPEC §3).
func (in *EventInput) DedupeKey(orgID string) [32]byte {
	return in.Encode().DedupeKey(orgID)
}

// EncodedInput is an EventInput with the JSON of its parts encoded once:
// its de-duplication key and its stored form are both made of them, so a
// driver encodes each event once rather than twice. It is immutable.
type EncodedInput struct {
	in                                                     *EventInput
	action, version, occurred, actor, targets, context, md []byte // md is nil when there is no metadata
	occurredUTC                                            []byte // occurred_at of the stored form
	canonical                                              canonicalParts
}

// Encode encodes the parts of an input (normally a normalized one).
func (in *EventInput) Encode() *EncodedInput {
	e := &EncodedInput{in: in}
	// Marshal fails only for values Validate rejects (NaN, channels…);
	// such an input never gets here from the API, and a nil part still
	// makes a well-formed, distinct encoding for the driver tests.
	e.action, _ = json.Marshal(in.Action)
	if in.Version != 0 {
		e.version = strconv.AppendInt(nil, int64(in.Version), 10)
	}
	e.occurred, _ = json.Marshal(in.OccurredAt)
	e.occurredUTC = e.occurred
	if in.OccurredAt.Location() != time.UTC {
		e.occurredUTC, _ = json.Marshal(in.OccurredAt.UTC())
	}
	e.actor, _ = json.Marshal(in.Actor)
	e.targets, _ = json.Marshal(in.Targets)
	e.context, _ = json.Marshal(in.Context)
	if len(in.Metadata) > 0 {
		e.md, _ = json.Marshal(in.Metadata)
	}
	e.canonical = canonicalParts{
		action:   appendCanonicalString(nil, in.Action),
		actor:    appendCanonicalParty(nil, in.Actor.ID, in.Actor.Type, in.Actor.Name, in.Actor.Metadata),
		context:  appendCanonicalContext(nil, in.Context),
		md:       appendCanonicalMetadataMember(nil, in.Metadata),
		occurred: appendCanonicalTime(nil, in.OccurredAt),
		targets:  appendCanonicalTargets(nil, in.Targets),
		version:  strconv.AppendInt(nil, int64(in.Version), 10),
	}
	return e
}

// LeafHash returns the leaf hash (SPEC §6) of the event stored with the
// given identity: the same as LeafHash of the Event that StoredJSON
// encodes, without decoding it.
func (e *EncodedInput) LeafHash(id, orgID string, receivedAt time.Time) [32]byte {
	return leafHash(e.canonical.append(make([]byte, 0, 256+len(e.actor)+len(e.targets)+len(e.context)+len(e.md)), id, orgID, receivedAt))
}

// JSON returns json.Marshal of the input, byte for byte.
func (e *EncodedInput) JSON() []byte {
	b := make([]byte, 0, 64+len(e.action)+len(e.occurred)+len(e.actor)+len(e.targets)+len(e.context)+len(e.md))
	b = append(append(append(b, `{"action":`...), e.action...), ',')
	if e.version != nil {
		b = append(append(append(b, `"version":`...), e.version...), ',')
	}
	b = append(append(b, `"occurred_at":`...), e.occurred...)
	return e.rest(b)
}

// rest appends actor, targets, context and metadata, and the closing
// brace: the last fields of both the input and the stored event.
func (e *EncodedInput) rest(b []byte) []byte {
	b = append(append(b, `,"actor":`...), e.actor...)
	b = append(append(b, `,"targets":`...), e.targets...)
	b = append(append(b, `,"context":`...), e.context...)
	if e.md != nil {
		b = append(append(b, `,"metadata":`...), e.md...)
	}
	return append(b, '}')
}

// DedupeStamp is the creation time (Unix nanoseconds) a driver records
// with the input's de-duplication entry: now, or DurableDedupe for a
// durable one. Entries expire IdempotencyWindow after it.
func (e *EncodedInput) DedupeStamp(now time.Time) int64 {
	if e.in.Durable {
		return DurableDedupe
	}
	return now.UnixNano()
}

// DedupeKey returns the input's de-duplication key in the organization.
func (e *EncodedInput) DedupeKey(orgID string) [32]byte {
	h := sha256.New()
	if k := e.in.IdempotencyKey; k != "" {
		fmt.Fprintf(h, "key\x00%s\x00%d\x00%s\x00", orgID, len(k), k)
	} else {
		fmt.Fprintf(h, "event\x00%s\x00", orgID)
	}
	h.Write(e.JSON())
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// StoredJSON returns json.Marshal(in.Stored(id, orgID, index, receivedAt)),
// byte for byte, from the parts encoded once.
func (e *EncodedInput) StoredJSON(id, orgID string, index int64, receivedAt time.Time) []byte {
	version := e.version
	if version == nil {
		version = []byte("0")
	}
	idJSON, _ := json.Marshal(id)
	orgJSON, _ := json.Marshal(orgID)
	received, _ := json.Marshal(receivedAt.UTC())
	b := make([]byte, 0, 160+len(e.action)+len(e.occurred)+len(e.actor)+len(e.targets)+len(e.context)+len(e.md))
	b = append(append(b, `{"id":`...), idJSON...)
	b = append(append(b, `,"organization_id":`...), orgJSON...)
	b = strconv.AppendInt(append(b, `,"index":`...), index, 10)
	b = append(append(b, `,"action":`...), e.action...)
	b = append(append(b, `,"version":`...), version...)
	b = append(append(b, `,"occurred_at":`...), e.occurredUTC...)
	b = append(append(b, `,"received_at":`...), received...)
	return e.rest(b)
}

// Stored returns the stored form of in with the given identity.
func (in *EventInput) Stored(id, orgID string, index int64, receivedAt time.Time) *Event {
	return &Event{
		ID: id, OrganizationID: orgID, Index: index, Action: in.Action, Version: in.Version,
		OccurredAt: in.OccurredAt.UTC(), ReceivedAt: receivedAt.UTC(),
		Actor: in.Actor, Targets: in.Targets, Context: in.Context, Metadata: in.Metadata,
	}
}

// Caller is who asks for a change, recorded as the actor and context of
// Trail's own audit events (SPEC §12).
type Caller struct {
	Actor   Actor
	Context EventContext
}

type callerKey struct{}

// NewContextWithCaller returns a context that carries the caller.
func NewContextWithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFromContext returns the caller of ctx, or the local operator when
// there is none (a CLI command working on the database directly).
func CallerFromContext(ctx context.Context) *Caller {
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok && c != nil {
		return c
	}
	return &Caller{
		Actor:   Actor{ID: "trail-cli", Type: "system", Name: "trail command line"},
		Context: EventContext{Location: "local"},
	}
}

// Own audit event actions (SPEC §12).
const (
	ActionOrganizationCreated = "organization.created"
	ActionAPIKeyCreated       = "api_key.created"
	ActionAPIKeyRevoked       = "api_key.revoked"
	ActionSchemaCreated       = "audit_log_schema.created"
	ActionRetentionUpdated    = "audit_log_retention.updated"
	SystemOrganizationID      = "org_system"
	DemoOrganizationID        = "org_demo"
)

// SearchText is what q searches in an event (SPEC §7): the action, the
// actor's and targets' ids, types and names, the location, the user agent
// and every metadata value, separated by spaces. Drivers index it with
// their own full-text engine; q matches whole words of it.
func SearchText(ev *Event) string {
	var b strings.Builder
	w := func(s string) {
		if s != "" {
			b.WriteString(s)
			b.WriteByte(' ')
		}
	}
	md := func(m Metadata) {
		for _, v := range m {
			switch v := v.(type) {
			case string:
				w(v)
			default:
				w(fmt.Sprint(v))
			}
		}
	}
	w(ev.Action)
	w(ev.Actor.ID)
	w(ev.Actor.Type)
	w(ev.Actor.Name)
	md(ev.Actor.Metadata)
	for _, t := range ev.Targets {
		w(t.ID)
		w(t.Type)
		w(t.Name)
		md(t.Metadata)
	}
	w(ev.Context.Location)
	w(ev.Context.UserAgent)
	md(ev.Metadata)
	return b.String()
}
