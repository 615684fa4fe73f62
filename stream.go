package trail

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Stream types (SPEC §10), named as WorkOS names them.
const (
	StreamDatadog = "Datadog"
	StreamSplunk  = "Splunk"
	StreamS3      = "S3"
	StreamGCS     = "GoogleCloudStorage"
	StreamHTTPS   = "GenericHttps"
)

// StreamTypes lists the stream types.
var StreamTypes = []string{StreamDatadog, StreamSplunk, StreamS3, StreamGCS, StreamHTTPS}

// Stream states (SPEC §10). A stream is active while deliveries succeed,
// in error while it retries a failure that may pass, invalid when the
// destination refused its credentials or payload (it is retried slowly,
// and at once after an update), and inactive while paused.
const (
	StreamActive   = "active"
	StreamError    = "error"
	StreamInvalid  = "invalid"
	StreamInactive = "inactive"
)

// Own audit events of streams (SPEC §12).
const (
	ActionStreamCreated  = "log_stream.created"
	ActionStreamUpdated  = "log_stream.updated"
	ActionStreamDeleted  = "log_stream.deleted"
	ActionStreamPaused   = "log_stream.paused"
	ActionStreamResumed  = "log_stream.resumed"
	ActionStreamReplayed = "log_stream.replayed"
)

// Defaults of stream delivery.
const (
	// StreamLease is how long a node holds a stream without renewing its
	// claim; when the node dies, another takes the stream over after it.
	StreamLease = 30 * time.Second
	// MaxStreamBackoff caps the wait between failed deliveries.
	MaxStreamBackoff = 5 * time.Minute
	// MaxStreams is how many streams an organization may have.
	MaxStreams = 10
)

// MaskedSecret is what a stream's secret reads as.
const MaskedSecret = "********"

// DatadogSites are the Datadog sites a Datadog stream may name.
var DatadogSites = []string{"datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu",
	"ap1.datadoghq.com", "ap2.datadoghq.com", "uk1.datadoghq.com", "ddog-gov.com", "us2.ddog-gov.com"}

// StreamConfig is the settings of a stream that are not secret. Which
// fields a type takes is in StreamFields.
type StreamConfig struct {
	// Datadog
	Site     string `json:"site,omitempty"`
	Service  string `json:"service,omitempty"`
	Source   string `json:"source,omitempty"` // Datadog's ddsource, Splunk's source
	Tags     string `json:"tags,omitempty"`   // Datadog's ddtags: "k:v,k:v"
	Hostname string `json:"hostname,omitempty"`
	// URL is the destination: Splunk's HEC base URL, the GenericHttps
	// endpoint, or a Datadog-compatible intake instead of the site's.
	URL string `json:"url,omitempty"`
	// Splunk
	Index      string `json:"index,omitempty"`
	SourceType string `json:"sourcetype,omitempty"`
	Ack        bool   `json:"ack,omitempty"` // wait for indexer acknowledgement
	// S3 and GoogleCloudStorage
	Bucket       string `json:"bucket,omitempty"`
	Region       string `json:"region,omitempty"`
	Prefix       string `json:"prefix,omitempty"`
	AccessKeyID  string `json:"access_key_id,omitempty"`
	HMACAccessID string `json:"hmac_access_id,omitempty"`
	Endpoint     string `json:"endpoint,omitempty"` // an S3-compatible store
	// GenericHttps: "json" (an array) or "ndjson".
	Format string `json:"format,omitempty"`
}

// StreamSecrets is the secret settings of a stream: stored sealed
// (AES-256-GCM), never returned.
type StreamSecrets struct {
	APIKey          string            `json:"api_key,omitempty"`           // Datadog
	Token           string            `json:"token,omitempty"`             // Splunk
	SecretAccessKey string            `json:"secret_access_key,omitempty"` // S3
	HMACSecret      string            `json:"hmac_secret,omitempty"`       // GoogleCloudStorage
	Secret          string            `json:"secret,omitempty"`            // GenericHttps: whsec_…
	Headers         map[string]string `json:"headers,omitempty"`           // GenericHttps: extra headers (auth)
}

// StreamField describes one config field of a stream type.
type StreamField struct {
	Name     string
	Required bool
	Secret   bool
}

// StreamFields lists the config fields of each stream type (SPEC §10).
var StreamFields = map[string][]StreamField{
	StreamDatadog: {{"site", true, false}, {"api_key", true, true}, {"service", false, false}, {"source", false, false},
		{"tags", false, false}, {"hostname", false, false}, {"url", false, false}},
	StreamSplunk: {{"url", true, false}, {"token", true, true}, {"index", false, false}, {"source", false, false},
		{"sourcetype", false, false}, {"ack", false, false}},
	StreamS3: {{"bucket", true, false}, {"region", true, false}, {"prefix", false, false}, {"access_key_id", true, false},
		{"secret_access_key", true, true}, {"endpoint", false, false}},
	StreamGCS: {{"bucket", true, false}, {"region", false, false}, {"prefix", false, false}, {"hmac_access_id", true, false},
		{"hmac_secret", true, true}, {"endpoint", false, false}},
	StreamHTTPS: {{"url", true, false}, {"format", false, false}, {"secret", false, true}, {"headers", false, true}},
}

// Stream is a log stream: an organization's events delivered, in index
// order and at least once, to a SIEM or a bucket (SPEC §10).
type Stream struct {
	ID             string
	OrganizationID string
	Type           string
	Name           string
	Config         StreamConfig
	// Secrets is the secret config in the clear: set by whoever creates
	// or updates the stream, and by whoever opens Sealed. Drivers store
	// Sealed only.
	Secrets StreamSecrets
	// Sealed is Secrets sealed with the instance's secret key.
	Sealed []byte
	// SecretFields names the secrets that are set, so that reads can
	// show them masked without opening them.
	SecretFields []string
	State        string
	LastError    string
	LastErrorAt  *time.Time
	// Cursor is the index of the next event to deliver.
	Cursor int64
	// Lag is how many events of the organization's log are at or past
	// the cursor: not delivered yet.
	Lag int64
	// Delivered counts the events delivered since the stream was created.
	Delivered    int64
	LastSyncedAt *time.Time
	// RetryAt is when a failed delivery is tried again.
	RetryAt *time.Time
	// Generation grows with every change through the API; a node that
	// delivers the stream reloads it when it changed.
	Generation int64
	// Claim identifies the node's hold on the stream; only the holder
	// records deliveries.
	Claim     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// StreamChange is a change of a stream through the API. It may change
// the name, config, secrets and state, and set the cursor; the stream's
// own event Action (log_stream.updated, .paused, .resumed, .replayed),
// with Metadata, is recorded with it.
type StreamChange struct {
	// Action is the audit event's action.
	Action string
	// Metadata is the audit event's metadata; Apply may add to it.
	Metadata Metadata
	// Apply changes the stream read in the change's transaction; it may
	// refuse the change with an error.
	Apply func(s *Stream) error
}

// StreamService stores log streams and their delivery progress.
type StreamService interface {
	// CreateStream stores a new stream: it gets its ID (unless set),
	// CreatedAt, state active and its cursor at the organization's log
	// head, so that its first event is its own log_stream.created, which
	// is recorded in the same transaction. ENOTFOUND for an unknown
	// organization, EINVALID when it has MaxStreams already.
	CreateStream(ctx context.Context, s *Stream) error
	// FindStreamByID returns a stream of the organization (of any when
	// orgID is ""), or ENOTFOUND.
	FindStreamByID(ctx context.Context, orgID, id string) (*Stream, error)
	// FindStreams lists streams by ID, of one organization or of all
	// when orgID is "".
	FindStreams(ctx context.Context, orgID string, f ListFilter) ([]*Stream, bool, error)
	// UpdateStream applies a change to a stream in one transaction with
	// its audit event, grows its Generation and, as every change may
	// have fixed what failed, makes it due at once. ENOTFOUND, or the
	// error of Apply.
	UpdateStream(ctx context.Context, orgID, id string, change StreamChange) (*Stream, error)
	// DeleteStream removes a stream and records log_stream.deleted.
	// ENOTFOUND.
	DeleteStream(ctx context.Context, orgID, id string) error

	// ClaimStream takes a stream that is due (not inactive, not held or
	// its holder's lease ran out) for lease and sets a new Claim, which
	// starts with node and ":". It returns nil when none is due. Of nodes
	// claiming at once, each stream goes to one.
	ClaimStream(ctx context.Context, node string, lease time.Duration) (*Stream, error)
	// ReleaseNodeStreams gives up every claim of node: a node that
	// restarts calls it before it claims, so that the streams its
	// previous process held are due at once rather than when their
	// leases end. It returns how many it released.
	ReleaseNodeStreams(ctx context.Context, node string) (int, error)
	// RenewStream extends the claim by lease and returns the stream as
	// stored, with its Lag. ECONFLICT when the claim was lost, ENOTFOUND
	// when the stream was deleted.
	RenewStream(ctx context.Context, s *Stream, lease time.Duration) (*Stream, error)
	// RecordDelivery moves the cursor of a claimed stream from s.Cursor
	// to next after a delivery of n events, marks it active and synced,
	// and updates s. ECONFLICT when the claim was lost or the stream
	// changed (Generation or cursor): the holder reloads it.
	RecordDelivery(ctx context.Context, s *Stream, next int64, n int) error
	// RecordStreamFailure records a failed delivery: state (StreamError
	// or StreamInvalid), the error, and when it is retried. ECONFLICT as
	// for RecordDelivery.
	RecordStreamFailure(ctx context.Context, s *Stream, state, msg string, retryAt time.Time) error
	// ReleaseStream gives up the claim; another node may take the
	// stream at once.
	ReleaseStream(ctx context.Context, s *Stream) error
}

// Masked returns the stream's config as a JSON object: the fields of its
// type, secrets as MaskedSecret (GenericHttps headers by name).
func (s *Stream) Masked() map[string]any {
	c := s.Config
	values := s.StringFields()
	out := map[string]any{}
	for _, f := range StreamFields[s.Type] {
		switch {
		case f.Name == "ack":
			out["ack"] = c.Ack
		case f.Name == "headers":
			if slices.Contains(s.SecretFields, "headers") {
				h := map[string]string{}
				for _, name := range s.headerNames() {
					h[name] = MaskedSecret
				}
				out["headers"] = h
			}
		case f.Secret:
			if slices.Contains(s.SecretFields, f.Name) {
				out[f.Name] = MaskedSecret
			}
		default:
			if v := *values[f.Name]; v != "" {
				out[f.Name] = v
			}
		}
	}
	return out
}

// ChangedFields lists, sorted, the API names of what differs between
// before and s: "name" and the config fields of the stream's type,
// secrets compared in the clear (both must be opened). A secret sent back
// masked kept its value, so it is no change; a new secret is one, by name
// only.
func (s *Stream) ChangedFields(before *Stream) []string {
	changed := []string{}
	if s.Name != before.Name {
		changed = append(changed, "name")
	}
	now, was := s.StringFields(), before.StringFields()
	for _, f := range StreamFields[s.Type] {
		var same bool
		switch f.Name {
		case "ack":
			same = s.Config.Ack == before.Config.Ack
		case "headers":
			same = maps.Equal(s.Secrets.Headers, before.Secrets.Headers)
		default:
			same = *now[f.Name] == *was[f.Name]
		}
		if !same {
			changed = append(changed, f.Name)
		}
	}
	sort.Strings(changed)
	return changed
}

// StringFields returns the string fields of the stream's config and
// secrets by their names in the API, as pointers into the stream.
func (s *Stream) StringFields() map[string]*string {
	c, sec := &s.Config, &s.Secrets
	return map[string]*string{"site": &c.Site, "service": &c.Service, "source": &c.Source, "tags": &c.Tags, "hostname": &c.Hostname,
		"url": &c.URL, "index": &c.Index, "sourcetype": &c.SourceType, "bucket": &c.Bucket, "region": &c.Region, "prefix": &c.Prefix,
		"access_key_id": &c.AccessKeyID, "hmac_access_id": &c.HMACAccessID, "endpoint": &c.Endpoint, "format": &c.Format,
		"api_key": &sec.APIKey, "token": &sec.Token, "secret_access_key": &sec.SecretAccessKey, "hmac_secret": &sec.HMACSecret, "secret": &sec.Secret}
}

// headerNames lists the GenericHttps header names kept beside the
// secrets: SecretFields holds "header:NAME" for each.
func (s *Stream) headerNames() []string {
	var names []string
	for _, f := range s.SecretFields {
		if name, ok := strings.CutPrefix(f, "header:"); ok {
			names = append(names, name)
		}
	}
	return names
}

// SetSecretFields records which secrets are set, from Secrets.
func (s *Stream) SetSecretFields() {
	sec := s.Secrets
	var fields []string
	for name, v := range map[string]string{"api_key": sec.APIKey, "token": sec.Token, "secret_access_key": sec.SecretAccessKey,
		"hmac_secret": sec.HMACSecret, "secret": sec.Secret} {
		if v != "" {
			fields = append(fields, name)
		}
	}
	if len(sec.Headers) > 0 {
		fields = append(fields, "headers")
		for name := range sec.Headers {
			fields = append(fields, "header:"+name)
		}
	}
	sort.Strings(fields)
	s.SecretFields = fields
}

var (
	bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$`)
	regionName = regexp.MustCompile(`^[a-z0-9-]{1,40}$`)
	headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")
)

// reservedHeaders may not be set by a GenericHttps stream's headers: Trail
// sets them.
var reservedHeaders = []string{"content-type", "content-length", "content-encoding", "host", "webhook-id", "webhook-timestamp",
	"webhook-signature", "transfer-encoding", "connection", "user-agent"}

// Validate checks the stream's name, type and config, and returns one
// problem per broken rule with a JSON pointer into the request body.
// allowHTTP lets URLs use plain http (tests and local receivers).
func (s *Stream) Validate(allowHTTP bool) []Problem {
	var ps []Problem
	add := func(path, format string, args ...any) {
		ps = append(ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if n := utf8.RuneCountInString(s.Name); n == 0 {
		add("/name", "is required")
	} else if n > MaxNameLength {
		add("/name", "must be at most %d characters", MaxNameLength)
	}
	fields, ok := StreamFields[s.Type]
	if !ok {
		add("/type", "must be one of %s", strings.Join(StreamTypes, ", "))
		return ps
	}
	c, sec := s.Config, s.Secrets
	values := s.StringFields()
	for _, f := range fields {
		var v string
		if p := values[f.Name]; p != nil {
			v = *p
		}
		if f.Required && v == "" {
			add("/config/"+f.Name, "is required for %s streams", s.Type)
		}
		if utf8.RuneCountInString(v) > 2048 {
			add("/config/"+f.Name, "must be at most 2048 characters")
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			add("/config/"+f.Name, "must not contain line breaks")
		}
	}
	checkURL := func(name, v string) {
		if v == "" {
			return
		}
		u, err := url.Parse(v)
		switch {
		case err != nil || u.Host == "" || u.User != nil || u.Fragment != "":
			add("/config/"+name, "must be an absolute URL without user info, e.g. https://host/path")
		case u.Scheme == "https":
		case u.Scheme == "http" && allowHTTP:
		default:
			add("/config/"+name, "must use https")
		}
	}
	switch s.Type {
	case StreamDatadog:
		if c.Site != "" && !slices.Contains(DatadogSites, c.Site) {
			add("/config/site", "must be one of %s", strings.Join(DatadogSites, ", "))
		}
		checkURL("url", c.URL)
	case StreamSplunk:
		checkURL("url", c.URL)
	case StreamS3, StreamGCS:
		if c.Bucket != "" && !bucketName.MatchString(c.Bucket) {
			add("/config/bucket", "must be a bucket name: 3 to 222 lower-case letters, digits, '.', '_' and '-'")
		}
		if c.Region != "" && !regionName.MatchString(c.Region) {
			add("/config/region", "must be a region name, e.g. us-east-1")
		}
		if strings.HasPrefix(c.Prefix, "/") || strings.Contains(c.Prefix, "..") {
			add("/config/prefix", "must not start with '/' or contain '..'")
		}
		checkURL("endpoint", c.Endpoint)
	case StreamHTTPS:
		checkURL("url", c.URL)
		if c.Format != "" && c.Format != "json" && c.Format != "ndjson" {
			add("/config/format", "must be json or ndjson")
		}
		if sec.Secret != "" && !ValidWebhookSecret(sec.Secret) {
			add("/config/secret", "must be whsec_ and the base64 of 24 to 64 random bytes")
		}
		if len(sec.Headers) > 20 {
			add("/config/headers", "must have at most 20 headers")
		}
		for name, v := range sec.Headers {
			switch {
			case !headerName.MatchString(name):
				add("/config/headers/"+name, "must be a header name")
			case slices.Contains(reservedHeaders, strings.ToLower(name)):
				add("/config/headers/"+name, "is set by Trail")
			case strings.ContainsAny(v, "\r\n\x00") || len(v) > 4096:
				add("/config/headers/"+name, "must be at most 4096 characters without line breaks")
			}
		}
	}
	return ps
}

// Destination returns the host the stream delivers to, for the check of
// private addresses.
func (s *Stream) Destination() string {
	c := s.Config
	raw := c.URL
	switch s.Type {
	case StreamDatadog:
		if raw == "" {
			return "http-intake.logs." + c.Site
		}
	case StreamS3:
		if c.Endpoint == "" {
			return "s3." + c.Region + ".amazonaws.com"
		}
		raw = c.Endpoint
	case StreamGCS:
		if c.Endpoint == "" {
			return "storage.googleapis.com"
		}
		raw = c.Endpoint
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// ValidWebhookSecret reports whether s is a Standard Webhooks secret:
// "whsec_" and the base64 of 24 to 64 bytes.
func ValidWebhookSecret(s string) bool {
	b, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(b)
	return err == nil && len(key) >= 24 && len(key) <= 64
}

// NewWebhookSecret returns a new Standard Webhooks secret of 32 random
// bytes.
func NewWebhookSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}
