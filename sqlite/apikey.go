package sqlite

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
)

// APIKeyService implements trail.APIKeyService on SQLite.
type APIKeyService struct{ db *DB }

var _ trail.APIKeyService = (*APIKeyService)(nil)

// NewAPIKeyService returns an APIKeyService on db.
func NewAPIKeyService(db *DB) *APIKeyService { return &APIKeyService{db: db} }

// secretPrefixLength is how much of a secret is kept in clear to find its
// row; the rest is only compared as a hash.
const secretPrefixLength = 12

// CreateAPIKey stores a key with a hash of its secret.
func (s *APIKeyService) CreateAPIKey(ctx context.Context, k *trail.APIKey) error {
	now := s.db.Now().UTC()
	k.ID = "key_" + s.db.ids.New(now)
	k.CreatedAt = now
	if k.Secret == "" {
		k.Secret = ident.Secret()
	}
	if len(k.Secret) < 32 || !strings.HasPrefix(k.Secret, "sk_") {
		return trail.Errorf(trail.EINVALID, "An API key secret must start with sk_ and have at least 32 characters.")
	}
	if err := k.ValidatePermissions(); err != nil {
		return err
	}
	perms, _ := json.Marshal(k.Permissions)
	hash := sha256.Sum256([]byte(k.Secret))
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if k.OrganizationID != "" {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM organizations WHERE id = ?`, k.OrganizationID).Scan(&one); err == sql.ErrNoRows {
			return trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", k.OrganizationID)
		} else if err != nil {
			return err
		}
	}
	var rl any
	if k.RateLimit != nil {
		rl = *k.RateLimit
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO api_keys (id, organization_id, name, permissions, prefix, secret_hash, rate_limit, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.OrganizationID, k.Name, string(perms), k.Secret[:secretPrefixLength], hash[:], rl, formatTime(now)); err != nil {
		return fmt.Errorf("create api key: %w", interpretError(err))
	}
	org := k.OrganizationID
	if org == "" {
		org = trail.SystemOrganizationID
	}
	md := trail.Metadata{"permissions": trail.JoinPermissions(k.Permissions)}
	if k.OrganizationID != "" {
		md["organization_id"] = k.OrganizationID
	}
	ev := trail.AuditEvent(ctx, trail.ActionAPIKeyCreated, now, md, trail.Target{ID: k.ID, Type: "api_key", Name: k.Name})
	if err := s.db.appendOwn(ctx, tx, org, ev); err != nil {
		return fmt.Errorf("record api_key.created: %w", err)
	}
	return tx.Commit()
}

const keyColumns = `id, organization_id, name, permissions, rate_limit, created_at, revoked_at`

func scanKey(row interface{ Scan(...any) error }, extra ...any) (*trail.APIKey, error) {
	var k trail.APIKey
	var perms, created string
	var revoked sql.NullString
	var rl sql.NullInt64
	dest := append([]any{&k.ID, &k.OrganizationID, &k.Name, &perms, &rl, &created, &revoked}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(perms), &k.Permissions); err != nil {
		return nil, fmt.Errorf("decode permissions: %w", err)
	}
	if rl.Valid {
		n := int(rl.Int64)
		k.RateLimit = &n
	}
	k.CreatedAt = parseTime(created)
	k.RevokedAt = parseTimePtr(revoked)
	return &k, nil
}

// FindAPIKeyByID returns ENOTFOUND for an unknown id.
func (s *APIKeyService) FindAPIKeyByID(ctx context.Context, id string) (*trail.APIKey, error) {
	k, err := scanKey(s.db.reader.QueryRowContext(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, trail.Errorf(trail.ENOTFOUND, "API key not found: '%s'.", id)
	} else if err != nil {
		return nil, fmt.Errorf("find api key: %w", err)
	}
	return k, nil
}

// FindAPIKeys lists keys, all or one organization's.
func (s *APIKeyService) FindAPIKeys(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.APIKey, bool, error) {
	where, args := "1 = 1", []any{}
	if orgID != "" {
		where, args = "organization_id = ?", []any{orgID}
	}
	q, args := listQuery(`SELECT `+keyColumns+` FROM api_keys WHERE `+where, "id", args, f)
	rows, err := s.db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find api keys: %w", err)
	}
	defer rows.Close()
	var out []*trail.APIKey
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}

// RevokeAPIKey marks a key revoked and records api_key.revoked.
func (s *APIKeyService) RevokeAPIKey(ctx context.Context, id string) error {
	now := s.db.Now().UTC()
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var org, name string
	var revoked sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT organization_id, name, revoked_at FROM api_keys WHERE id = ?`, id).Scan(&org, &name, &revoked)
	if err == sql.ErrNoRows {
		return trail.Errorf(trail.ENOTFOUND, "API key not found: '%s'.", id)
	} else if err != nil {
		return err
	}
	if revoked.Valid {
		return nil // revoking twice changes nothing
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, formatTime(now), id); err != nil {
		return err
	}
	if org == "" {
		org = trail.SystemOrganizationID
	}
	ev := trail.AuditEvent(ctx, trail.ActionAPIKeyRevoked, now, nil, trail.Target{ID: id, Type: "api_key", Name: name})
	if err := s.db.appendOwn(ctx, tx, org, ev); err != nil {
		return fmt.Errorf("record api_key.revoked: %w", err)
	}
	return tx.Commit()
}

// Authenticate finds the active key with this secret.
func (s *APIKeyService) Authenticate(ctx context.Context, secret string) (*trail.APIKey, error) {
	unauthorized := trail.Errorf(trail.EUNAUTHORIZED, "Invalid API key.")
	if len(secret) < 32 {
		return nil, unauthorized
	}
	hash := sha256.Sum256([]byte(secret))
	rows, err := s.db.reader.QueryContext(ctx, `SELECT `+keyColumns+`, secret_hash FROM api_keys WHERE prefix = ?`, secret[:secretPrefixLength])
	if err != nil {
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	defer rows.Close()
	var found *trail.APIKey
	for rows.Next() {
		var stored []byte
		k, err := scanKey(rows, &stored)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(stored, hash[:]) == 1 && k.RevokedAt == nil {
			found = k
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if found == nil {
		return nil, unauthorized
	}
	return found, nil
}
