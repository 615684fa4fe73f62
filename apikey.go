package trail

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Permission is what an API key may do.
type Permission string

// Permissions of SPEC §4.
const (
	PermEventsWrite   Permission = "events:write"
	PermEventsRead    Permission = "events:read"
	PermSchemasWrite  Permission = "schemas:write"
	PermExports       Permission = "exports"
	PermStreams       Permission = "streams"
	PermOrganizations Permission = "organizations"
	PermKeys          Permission = "keys"
	PermPortal        Permission = "portal"
	// PermMetrics reads the instance's Prometheus metrics (GET /metrics),
	// which name every tenant's log streams: only an instance-wide key
	// may hold it.
	PermMetrics Permission = "metrics"
	PermAdmin   Permission = "admin"
)

// AllPermissions lists every permission.
var AllPermissions = []Permission{PermEventsWrite, PermEventsRead, PermSchemasWrite, PermExports,
	PermStreams, PermOrganizations, PermKeys, PermPortal, PermMetrics, PermAdmin}

// ValidPermission reports whether p is a known permission.
func ValidPermission(p Permission) bool { return slices.Contains(AllPermissions, p) }

// InstancePermission reports whether only an instance-wide key may hold
// p: what it grants spans every organization.
func InstancePermission(p Permission) bool { return p == PermMetrics }

// ValidatePermissions returns EINVALID when the key holds an unknown
// permission, or an organization's key holds an instance permission.
// (An organization's admin key holds no instance permission: CanInstance
// is false for it.)
func (k *APIKey) ValidatePermissions() error {
	for _, p := range k.Permissions {
		switch {
		case !ValidPermission(p):
			return Errorf(EINVALID, "Unknown permission %q.", p)
		case k.OrganizationID != "" && InstancePermission(p):
			return Errorf(EINVALID, "The %s permission is instance-wide: an organization's key cannot hold it.", p)
		}
	}
	return nil
}

// MinSecretLength is the shortest API key secret Trail takes.
const MinSecretLength = 32

// SecretPrefixLength is how much of a secret is kept in clear to find its
// key's row; the rest is only compared as a hash.
const SecretPrefixLength = 12

// ValidSecret reports whether s may be an API key's secret: "sk_", at
// least MinSecretLength characters and no NUL. It is the one rule for
// generated, given (POST /api_keys) and bootstrap (TRAIL_ADMIN_KEY)
// secrets.
func ValidSecret(s string) bool {
	return len(s) >= MinSecretLength && strings.HasPrefix(s, "sk_") && strings.IndexByte(s, 0) < 0
}

// ErrInvalidSecret is a secret that ValidSecret refuses.
func ErrInvalidSecret() *Error {
	return Errorf(EINVALID, "An API key secret must start with sk_ and have at least %d characters.", MinSecretLength)
}

// Validate returns EINVALID when the key's secret, permissions or rate
// limit break the rules.
func (k *APIKey) Validate() error {
	if !ValidSecret(k.Secret) {
		return ErrInvalidSecret()
	}
	if k.RateLimit != nil && *k.RateLimit < 0 {
		return Errorf(EINVALID, "A rate limit is a number of requests a minute, 0 or more.")
	}
	return k.ValidatePermissions()
}

// APIKey is a secret with permissions, instance-wide (OrganizationID "") or
// scoped to one organization.
type APIKey struct {
	ID             string       `json:"id"`
	Name           string       `json:"name"`
	OrganizationID string       `json:"organization_id"`
	Permissions    []Permission `json:"permissions"`
	RateLimit      *int         `json:"rate_limit"` // requests a minute; nil: the instance default
	CreatedAt      time.Time    `json:"created_at"`
	RevokedAt      *time.Time   `json:"revoked_at,omitempty"`
	// Secret is set only when the key is created.
	Secret string `json:"secret,omitempty"`
}

// JoinPermissions writes permissions as a comma list.
func JoinPermissions(ps []Permission) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ",")
}

// Can reports whether the key holds permission p.
func (k *APIKey) Can(p Permission) bool {
	return slices.Contains(k.Permissions, PermAdmin) || slices.Contains(k.Permissions, p)
}

// CanInstance reports whether the key holds an instance permission p
// (InstancePermission): only an instance-wide key can, admin included.
func (k *APIKey) CanInstance(p Permission) bool {
	return k.OrganizationID == "" && k.Can(p)
}

// CanAct reports whether the key may act on the given organization.
func (k *APIKey) CanAct(orgID string) bool {
	return k.OrganizationID == "" || k.OrganizationID == orgID
}

// APIKeyService manages API keys.
type APIKeyService interface {
	// CreateAPIKey stores a key, assigning ID, CreatedAt and, unless given,
	// Secret. Only a hash of the secret is stored. Records api_key.created.
	CreateAPIKey(ctx context.Context, key *APIKey) error

	// FindAPIKeyByID returns ENOTFOUND for an unknown id.
	FindAPIKeyByID(ctx context.Context, id string) (*APIKey, error)

	// FindAPIKeys lists keys by ID; orgID "" lists all, otherwise only
	// that organization's keys.
	FindAPIKeys(ctx context.Context, orgID string, f ListFilter) ([]*APIKey, bool, error)

	// RevokeAPIKey revokes a key and records api_key.revoked. ENOTFOUND.
	RevokeAPIKey(ctx context.Context, id string) error

	// Authenticate returns the active key with this secret, comparing
	// hashes in constant time, or EUNAUTHORIZED.
	Authenticate(ctx context.Context, secret string) (*APIKey, error)
}
