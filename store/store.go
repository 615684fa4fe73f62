// Package store is the boundary between Trail's services and its
// database drivers (River's riverdriver): the fine-grained operations a
// driver offers, in domain types, with no rule in them. The rules
// (validation, limits, error messages, Trail's own audit events) are the
// service package's, written once above every driver; a driver holds
// only its dialect: SQL, migrations and the operations it runs natively
// for speed.
//
// A driver returns ErrNotFound when a row it was asked for does not
// exist, and a trail.Error with code ECONFLICT for a unique violation;
// the services turn both into messages for people.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/trail-audit/trail"
)

// ErrNotFound is what a driver returns for a row that does not exist.
var ErrNotFound = errors.New("store: not found")

// Driver is one opened database as the services see it.
type Driver interface {
	// Executor runs each operation on its own, outside a transaction
	// (reads see committed data).
	Executor

	// InTx runs fn in one write transaction, committed when fn returns
	// nil and rolled back otherwise. Operations of the Executor given to
	// fn see each other's writes; Trail's own events appended in it are
	// durable once InTx returns nil.
	InTx(ctx context.Context, fn func(Executor) error) error

	// Now is the driver's clock.
	Now() time.Time
}

// Executor is every fine-grained operation a driver offers. The methods
// with lock take a row lock (FOR UPDATE where the dialect has one) when
// lock is true and they run in a transaction.
type Executor interface {
	// AppendOwn appends one of Trail's own audit events to the
	// organization's log in the transaction (the native append path).
	AppendOwn(ctx context.Context, orgID string, ev *trail.EventInput) error

	OrganizationExecutor
	APIKeyExecutor
	SchemaExecutor
	PortalExecutor
	IdempotencyExecutor
	StreamExecutor
	ExportExecutor
}

// OrganizationExecutor stores organizations.
type OrganizationExecutor interface {
	// OrganizationInsert stores a new organization: ECONFLICT when its id
	// is taken.
	OrganizationInsert(ctx context.Context, org *trail.Organization) error
	// OrganizationGet reads one organization.
	OrganizationGet(ctx context.Context, id string, lock bool) (*trail.Organization, error)
	// OrganizationList lists organizations, all (ids nil) or those of
	// ids, one page plus one row past it.
	OrganizationList(ctx context.Context, ids []string, f trail.ListFilter) ([]*trail.Organization, error)
	// OrganizationSetRetention sets the retention period.
	OrganizationSetRetention(ctx context.Context, id string, days int, now time.Time) error
	// OrganizationNextIndex is the index the organization's next event
	// gets.
	OrganizationNextIndex(ctx context.Context, id string) (int64, error)
}

// KeyHash is a stored API key with the SHA-256 hash of its secret.
type KeyHash struct {
	Key  *trail.APIKey
	Hash []byte
}

// APIKeyExecutor stores API keys; a secret is stored only as its prefix
// and hash.
type APIKeyExecutor interface {
	APIKeyInsert(ctx context.Context, k *trail.APIKey, prefix string, hash [32]byte) error
	APIKeyGet(ctx context.Context, id string, lock bool) (*trail.APIKey, error)
	// APIKeyList lists keys, all (orgID "") or one organization's, one
	// page plus one row past it.
	APIKeyList(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.APIKey, error)
	APIKeySetRevoked(ctx context.Context, id string, at time.Time) error
	// APIKeysByPrefix returns every key whose secret starts with prefix.
	APIKeysByPrefix(ctx context.Context, prefix string) ([]KeyHash, error)
}

// SchemaExecutor stores actions and their schema versions.
type SchemaExecutor interface {
	// ActionBumpVersion creates the action at version 1, or moves its
	// latest version on by one, and returns the new latest version; the
	// action's row stays locked to the transaction.
	ActionBumpVersion(ctx context.Context, action string, now time.Time) (int, error)
	SchemaInsert(ctx context.Context, sc *trail.Schema, body []byte) error
	SchemaGet(ctx context.Context, action string, version int) (*trail.Schema, error)
	ActionExists(ctx context.Context, action string) (bool, error)
	// SchemaList lists an action's versions, paged by version (after is
	// the bound's version when f has one), one page plus one row past it.
	SchemaList(ctx context.Context, action string, after int, f trail.ListFilter) ([]*trail.Schema, error)
	// ActionList lists actions with their latest schema, one page plus
	// one row past it.
	ActionList(ctx context.Context, f trail.ListFilter) ([]*trail.Action, error)
}

// PortalLinkState is what opening a link needs to know of it.
type PortalLinkState struct {
	Opened    bool
	ExpiresAt time.Time
}

// PortalExecutor stores portal links and the sessions they open; tokens
// and session secrets are stored only as hashes.
type PortalExecutor interface {
	PortalLinkInsert(ctx context.Context, l *trail.PortalLink, tokenHash []byte) error
	// PortalLinksDeleteOver removes the links whose link and session are
	// both over at now.
	PortalLinksDeleteOver(ctx context.Context, now time.Time) error
	PortalLinkState(ctx context.Context, tokenHash []byte, lock bool) (*PortalLinkState, error)
	// PortalLinkOpen marks the link opened with the session's hash and
	// expiry and returns the session.
	PortalLinkOpen(ctx context.Context, tokenHash, sessionHash []byte, now, expires time.Time) (*trail.PortalSession, error)
	// PortalSessionGet returns the session with this hash that is not
	// ended and not expired at now.
	PortalSessionGet(ctx context.Context, sessionHash []byte, now time.Time) (*trail.PortalSession, error)
	PortalSessionEnd(ctx context.Context, sessionHash []byte, now time.Time) error
	// PortalSessionSetUTC records whether the session shows times in UTC
	// rather than in its person's zone.
	PortalSessionSetUTC(ctx context.Context, sessionHash []byte, utc bool) error
	// ViewInsert stores a saved view; ViewList reads an organization's
	// (lock: FOR UPDATE of its organization's row, so that two saves of
	// one organization take turns); ViewDelete removes one, false when
	// there was none.
	ViewInsert(ctx context.Context, v *trail.SavedView) error
	ViewList(ctx context.Context, orgID string) ([]*trail.SavedView, error)
	ViewDelete(ctx context.Context, orgID, id string) (bool, error)
}

// StoredResponse is a row of the idempotency table: a claim while Status
// is 0.
type StoredResponse struct {
	trail.StoredResponse
	CreatedAt time.Time
}

// IdempotencyExecutor stores the responses of requests sent with an
// Idempotency-Key.
type IdempotencyExecutor interface {
	// ResponseClaimOrGet claims k at now when no row has it (nil,
	// true); otherwise it returns the row, locked to the transaction.
	ResponseClaimOrGet(ctx context.Context, k trail.ResponseKey, now time.Time) (*StoredResponse, bool, error)
	// ResponseReclaim makes the row of k a new claim at now.
	ResponseReclaim(ctx context.Context, k trail.ResponseKey, now time.Time) error
	// ResponseFinish stores the response of a claim (and of nothing else).
	ResponseFinish(ctx context.Context, k trail.ResponseKey, r *trail.StoredResponse, now time.Time) error
	// ResponseRelease drops a claim.
	ResponseRelease(ctx context.Context, k trail.ResponseKey) error
}

// StreamGuard is what a holder's update of a stream must still match:
// its claim, generation and cursor, and the stream not paused.
type StreamGuard struct {
	OrganizationID, ID, Claim string
	Generation, Cursor        int64
}

// Guard returns the guard of a stream as its holder read it.
func Guard(st *trail.Stream) StreamGuard {
	return StreamGuard{OrganizationID: st.OrganizationID, ID: st.ID, Claim: st.Claim, Generation: st.Generation, Cursor: st.Cursor}
}

// StreamExecutor stores log streams and their delivery progress.
type StreamExecutor interface {
	StreamCount(ctx context.Context, orgID string) (int, error)
	StreamInsert(ctx context.Context, st *trail.Stream) error
	// StreamGet reads one stream of the organization (of any when orgID
	// is "" and lock is false), with its lag. A lock names the
	// organization: on a distributed database it is routed to its shard.
	StreamGet(ctx context.Context, orgID, id string, lock bool) (*trail.Stream, error)
	StreamList(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.Stream, error)
	// StreamUpdate stores the stream's name, config, secrets, state and
	// cursor, moves its generation on and clears its retry time.
	StreamUpdate(ctx context.Context, st *trail.Stream, now time.Time) error
	StreamDelete(ctx context.Context, orgID, id string) error
	// StreamClaim gives a due stream to claim until until (natively:
	// SKIP LOCKED where the dialect has it); nil when none is due.
	StreamClaim(ctx context.Context, claim string, now, until time.Time) (*trail.Stream, error)
	// StreamRenew extends a held claim: ErrNotFound when it is not held.
	StreamRenew(ctx context.Context, orgID, id, claim string, until time.Time) (*trail.Stream, error)
	// StreamRecordDelivery and StreamRecordFailure update a stream whose
	// guard still holds, returning ErrNotFound when it does not;
	// StreamRecordDelivery returns the organization's next index.
	StreamRecordDelivery(ctx context.Context, g StreamGuard, next int64, n int, now time.Time) (int64, error)
	StreamRecordFailure(ctx context.Context, g StreamGuard, state, msg string, now, retryAt time.Time) error
	StreamExists(ctx context.Context, orgID, id string) (bool, error)
	StreamRelease(ctx context.Context, orgID, id, claim string) error
	// StreamReleaseNode gives up every claim that starts with prefix.
	StreamReleaseNode(ctx context.Context, prefix string) (int, error)
}

// ExportExecutor stores export jobs; their files are the driver's own
// (trail.ExportService's file methods).
type ExportExecutor interface {
	ExportInsert(ctx context.Context, ex *trail.Export, filter []byte) error
	// ExportGet reads one export of the organization (of any when orgID
	// is ""), with its checkpoint when it has one.
	ExportGet(ctx context.Context, orgID, id string) (*trail.Export, error)
	// ExportIDs returns the IDs of the organization's newest exports,
	// newest first, at most limit.
	ExportIDs(ctx context.Context, orgID string, limit int) ([]string, error)
}

// EncodeStream returns the JSON a driver stores of a stream's config and
// of its secret fields' names.
func EncodeStream(st *trail.Stream) (config, fields []byte, err error) {
	if config, err = json.Marshal(&st.Config); err != nil {
		return nil, nil, err
	}
	fields, err = json.Marshal(st.SecretFields)
	return config, fields, err
}

// DecodeStream sets a stream's config and secret fields from what
// EncodeStream made, and clamps its lag at zero.
func DecodeStream(st *trail.Stream, config, fields []byte) error {
	if err := json.Unmarshal(config, &st.Config); err != nil {
		return fmt.Errorf("stream %s: config: %w", st.ID, err)
	}
	if err := json.Unmarshal(fields, &st.SecretFields); err != nil {
		return fmt.Errorf("stream %s: secret fields: %w", st.ID, err)
	}
	st.Lag = max(st.Lag, 0)
	return nil
}

// SchemaBody is the JSON a driver stores of a schema version.
type SchemaBody struct {
	Targets  []trail.SchemaTarget `json:"targets"`
	Actor    *trail.SchemaActor   `json:"actor,omitempty"`
	Metadata json.RawMessage      `json:"metadata,omitempty"`
}

// EncodeSchema returns the body a driver stores of a schema.
func EncodeSchema(sc *trail.Schema) ([]byte, error) {
	return json.Marshal(SchemaBody{Targets: sc.Targets, Actor: sc.Actor, Metadata: sc.Metadata})
}

// DecodeSchema sets a schema's parts from its stored body.
func DecodeSchema(sc *trail.Schema, body []byte) error {
	var b SchemaBody
	if err := json.Unmarshal(body, &b); err != nil {
		return fmt.Errorf("decode schema: %w", err)
	}
	sc.Targets, sc.Actor, sc.Metadata = b.Targets, b.Actor, b.Metadata
	return nil
}

// ExportJobs is the part of exports a driver does natively (the claims
// of the workers and the files), with trail.ExportService's contract for
// each method.
type ExportJobs interface {
	ClaimExport(ctx context.Context, lease time.Duration) (*trail.Export, error)
	RenewExport(ctx context.Context, ex *trail.Export, lease time.Duration) error
	ReleaseExport(ctx context.Context, ex *trail.Export, retryAt time.Time) error
	CreateExportFile(ctx context.Context, ex *trail.Export) (trail.ExportFile, error)
	FinishExport(ctx context.Context, ex *trail.Export, file trail.ExportFile) error
	OpenExportFile(ctx context.Context, orgID, id string) (io.ReadCloser, error)
	ExpireExports(ctx context.Context, before time.Time) (int, error)
}
