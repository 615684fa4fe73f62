package postgres

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
)

// APIKeyService implements trail.APIKeyService on PostgreSQL.
type APIKeyService struct{ db *DB }

var _ trail.APIKeyService = (*APIKeyService)(nil)

// NewAPIKeyService returns an APIKeyService on db.
func NewAPIKeyService(db *DB) *APIKeyService { return &APIKeyService{db: db} }

// secretPrefixLength is how much of a secret is kept in clear to find its
// row; the rest is only compared as a hash.
const secretPrefixLength = 12

// CreateAPIKey stores a key with a hash of its secret.
func (s *APIKeyService) CreateAPIKey(ctx context.Context, k *trail.APIKey) error {
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return err
	}
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
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if k.OrganizationID != "" {
			var one int
			if err := tx.QueryRow(ctx, `SELECT 1 FROM organizations WHERE id = $1`, k.OrganizationID).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
				return trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", k.OrganizationID)
			} else if err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO api_keys (organization_id, id, name, permissions, prefix, secret_hash, rate_limit, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			k.OrganizationID, k.ID, k.Name, string(perms), k.Secret[:secretPrefixLength], hash[:], k.RateLimit, now); err != nil {
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
		return nil
	})
}

const keyColumns = `id, organization_id, name, permissions, rate_limit, created_at, revoked_at`

func scanKey(row pgx.Row, extra ...any) (*trail.APIKey, error) {
	var k trail.APIKey
	var perms string
	var rl *int
	var revoked *time.Time
	dest := append([]any{&k.ID, &k.OrganizationID, &k.Name, &perms, &rl, &k.CreatedAt, &revoked}, extra...)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(perms), &k.Permissions); err != nil {
		return nil, fmt.Errorf("decode permissions: %w", err)
	}
	k.RateLimit = rl
	k.CreatedAt = k.CreatedAt.UTC()
	if revoked != nil {
		t := revoked.UTC()
		k.RevokedAt = &t
	}
	return &k, nil
}

// FindAPIKeyByID returns ENOTFOUND for an unknown id.
func (s *APIKeyService) FindAPIKeyByID(ctx context.Context, id string) (*trail.APIKey, error) {
	k, err := scanKey(s.db.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "API key not found: '%s'.", id)
	} else if err != nil {
		return nil, fmt.Errorf("find api key: %w", err)
	}
	return k, nil
}

// FindAPIKeys lists keys, all or one organization's.
func (s *APIKeyService) FindAPIKeys(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.APIKey, bool, error) {
	where, args := "true", []any{}
	if orgID != "" {
		where, args = "organization_id = $1", []any{orgID}
	}
	q, args := listQuery(`SELECT `+keyColumns+` FROM api_keys WHERE `+where, "id", args, f)
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find api keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*trail.APIKey, error) { return scanKey(r) })
	if err != nil {
		return nil, false, fmt.Errorf("find api keys: %w", err)
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}

// RevokeAPIKey marks a key revoked and records api_key.revoked.
func (s *APIKeyService) RevokeAPIKey(ctx context.Context, id string) error {
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var org, name string
		var revoked *time.Time
		err := tx.QueryRow(ctx, `SELECT organization_id, name, revoked_at FROM api_keys WHERE id = $1 FOR UPDATE`, id).Scan(&org, &name, &revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return trail.Errorf(trail.ENOTFOUND, "API key not found: '%s'.", id)
		} else if err != nil {
			return err
		}
		if revoked != nil {
			return nil // revoking twice changes nothing
		}
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2`, now, id); err != nil {
			return err
		}
		if org == "" {
			org = trail.SystemOrganizationID
		}
		ev := trail.AuditEvent(ctx, trail.ActionAPIKeyRevoked, now, nil, trail.Target{ID: id, Type: "api_key", Name: name})
		if err := s.db.appendOwn(ctx, tx, org, ev); err != nil {
			return fmt.Errorf("record api_key.revoked: %w", err)
		}
		return nil
	})
}

// Authenticate finds the active key with this secret.
func (s *APIKeyService) Authenticate(ctx context.Context, secret string) (*trail.APIKey, error) {
	unauthorized := trail.Errorf(trail.EUNAUTHORIZED, "Invalid API key.")
	if len(secret) < 32 {
		return nil, unauthorized
	}
	hash := sha256.Sum256([]byte(secret))
	rows, err := s.db.pool.Query(ctx, `SELECT `+keyColumns+`, secret_hash FROM api_keys WHERE prefix = $1`, secret[:secretPrefixLength])
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
