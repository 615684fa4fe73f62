package trail

import (
	"context"
	"time"
)

// Organization is a tenant.
type Organization struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	RetentionDays int       `json:"-"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// ListFilter pages through a list ordered by a string key (a name, an id
// or a zero-padded number). Before and After are exclusive keys.
type ListFilter struct {
	Limit     int
	Before    string
	After     string
	Ascending bool
}

// OrganizationService manages organizations.
type OrganizationService interface {
	// CreateOrganization stores a new organization, assigning its ID unless
	// set, and records organization.created in its log. ECONFLICT if the ID
	// exists.
	CreateOrganization(ctx context.Context, org *Organization) error

	// FindOrganizationByID returns ENOTFOUND for an unknown id.
	FindOrganizationByID(ctx context.Context, id string) (*Organization, error)

	// FindOrganizations lists organizations ordered by ID; only IDs is
	// given, only those. The bool reports more in the direction of travel.
	FindOrganizations(ctx context.Context, ids []string, f ListFilter) ([]*Organization, bool, error)

	// UpdateRetention sets the retention period (1–3650 days) and records
	// audit_log_retention.updated. ENOTFOUND, EINVALID.
	UpdateRetention(ctx context.Context, id string, days int) (*Organization, error)
}
