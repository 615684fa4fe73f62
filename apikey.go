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
	PermAdmin         Permission = "admin"
)

// AllPermissions lists every permission.
var AllPermissions = []Permission{PermEventsWrite, PermEventsRead, PermSchemasWrite, PermExports,
	PermStreams, PermOrganizations, PermKeys, PermPortal, PermAdmin}

// ValidPermission reports whether p is a known permission.
func ValidPermission(p Permission) bool { return slices.Contains(AllPermissions, p) }

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
