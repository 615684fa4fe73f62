package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/store"
)

// APIKeys implements trail.APIKeyService. A secret is stored only as its
// first trail.SecretPrefixLength characters and its SHA-256 hash.
type APIKeys struct{ *base }

var _ trail.APIKeyService = (*APIKeys)(nil)

// CreateAPIKey stores a key, with a new secret unless one is given, and
// records api_key.created in its organization's log (org_system's for an
// instance-wide key).
func (s *APIKeys) CreateAPIKey(ctx context.Context, k *trail.APIKey) error {
	now := s.d.Now().UTC()
	if k.Secret == "" {
		k.Secret = ident.Secret()
	}
	if err := k.Validate(); err != nil {
		return err
	}
	k.ID, k.CreatedAt = s.newID("key_"), now
	return s.d.InTx(ctx, func(x store.Executor) error {
		if k.OrganizationID != "" {
			if _, err := x.OrganizationGet(ctx, k.OrganizationID, false); err != nil {
				return notFound(err, trail.ErrOrganizationNotFound(k.OrganizationID), "create api key")
			}
		}
		if err := x.APIKeyInsert(ctx, k, k.Secret[:trail.SecretPrefixLength], sha256.Sum256([]byte(k.Secret))); err != nil {
			return notFound(err, nil, "create api key")
		}
		return record(ctx, x, keyLog(k), k.AuditEvent(ctx, trail.ActionAPIKeyCreated, now))
	})
}

// keyLog is the log a key's own events go to.
func keyLog(k *trail.APIKey) string {
	if k.OrganizationID == "" {
		return trail.SystemOrganizationID
	}
	return k.OrganizationID
}

// FindAPIKeyByID returns ENOTFOUND for an unknown id.
func (s *APIKeys) FindAPIKeyByID(ctx context.Context, id string) (*trail.APIKey, error) {
	k, err := s.d.APIKeyGet(ctx, id, false)
	return k, notFound(err, trail.ErrAPIKeyNotFound(id), "find api key")
}

// FindAPIKeys lists keys, all or one organization's.
func (s *APIKeys) FindAPIKeys(ctx context.Context, orgID string, f trail.ListFilter) ([]*trail.APIKey, bool, error) {
	list, err := s.d.APIKeyList(ctx, orgID, f)
	return page(list, notFound(err, nil, "find api keys"), f)
}

// RevokeAPIKey marks a key revoked and records api_key.revoked; revoking
// twice changes nothing.
func (s *APIKeys) RevokeAPIKey(ctx context.Context, id string) error {
	now := s.d.Now().UTC()
	return s.d.InTx(ctx, func(x store.Executor) error {
		k, err := x.APIKeyGet(ctx, id, true)
		if err != nil {
			return notFound(err, trail.ErrAPIKeyNotFound(id), "revoke api key")
		}
		if k.RevokedAt != nil {
			return nil
		}
		if err := x.APIKeySetRevoked(ctx, id, now); err != nil {
			return notFound(err, nil, "revoke api key")
		}
		return record(ctx, x, keyLog(k), k.AuditEvent(ctx, trail.ActionAPIKeyRevoked, now))
	})
}

// Authenticate finds the active key with this secret, comparing hashes
// in constant time.
func (s *APIKeys) Authenticate(ctx context.Context, secret string) (*trail.APIKey, error) {
	if len(secret) < trail.MinSecretLength {
		return nil, trail.ErrInvalidAPIKey()
	}
	hash := sha256.Sum256([]byte(secret))
	keys, err := s.d.APIKeysByPrefix(ctx, secret[:trail.SecretPrefixLength])
	if err != nil {
		return nil, notFound(err, nil, "authenticate")
	}
	var found *trail.APIKey
	for _, kh := range keys {
		if subtle.ConstantTimeCompare(kh.Hash, hash[:]) == 1 && kh.Key.RevokedAt == nil {
			found = kh.Key
		}
	}
	if found == nil {
		return nil, trail.ErrInvalidAPIKey()
	}
	return found, nil
}
