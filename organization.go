package trail

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Organization is a tenant.
type Organization struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	RetentionDays int       `json:"-"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// ValidOrganizationID reports whether id may name a new organization:
// "org_" and then letters, digits, '_' and '-' (no '.' or ':'), at most
// 128 characters.
func ValidOrganizationID(id string) bool {
	return strings.HasPrefix(id, "org_") && ValidAction(id) && !strings.ContainsAny(id, ".:")
}

// ValidName reports whether name may name an organization or an API
// key: not blank, at most MaxNameLength characters, no NUL.
func ValidName(name string) bool {
	return strings.TrimSpace(name) != "" && utf8.RuneCountInString(name) <= MaxNameLength && !strings.ContainsRune(name, 0)
}

// ValidRetention reports whether days is a retention period Trail keeps:
// 1 to MaxRetentionDays.
func ValidRetention(days int) bool { return days >= 1 && days <= MaxRetentionDays }

// ErrInvalidRetention is a retention period ValidRetention refuses.
func ErrInvalidRetention() *Error {
	return Errorf(EINVALID, "retention_period_in_days must be between 1 and %d.", MaxRetentionDays)
}

// Validate returns EINVALID when the organization's id or name breaks
// the rules (an empty id is given one).
func (o *Organization) Validate() error {
	if o.ID != "" && !ValidOrganizationID(o.ID) {
		return &Error{Code: EINVALID, Message: "An organization id is org_ and letters, digits, '_' and '-'.", Problems: []Problem{{Path: "/id", Message: "invalid"}}}
	}
	if !ValidName(o.Name) {
		return &Error{Code: EINVALID, Message: fmt.Sprintf("An organization needs a name of 1 to %d characters.", MaxNameLength), Problems: []Problem{{Path: "/name", Message: "required"}}}
	}
	return nil
}

// ListFilter pages through a list ordered by a string key (a name, an id
// or a zero-padded number). Before and After are exclusive keys.
type ListFilter struct {
	Limit     int
	Before    string
	After     string
	Ascending bool
}

// DefaultListLimit is the page size of a ListFilter without a Limit.
const DefaultListLimit = 10

// PageLimit returns the page size: Limit, or DefaultListLimit.
func (f ListFilter) PageLimit() int {
	if f.Limit <= 0 {
		return DefaultListLimit
	}
	return f.Limit
}

// Bound returns the cursor key and whether the page's keys are greater
// than it; ok is false without a cursor. A driver reads keys in the
// direction of ScanAscending from the bound, asks for PageLimit()+1 rows
// and passes them to TrimPage.
func (f ListFilter) Bound() (key string, greater, ok bool) {
	switch {
	case f.After != "":
		return f.After, f.Ascending, true
	case f.Before != "":
		return f.Before, !f.Ascending, true
	}
	return "", false, false
}

// ScanAscending reports the order in which a driver reads keys: the
// list's order, reversed for a Before page (which is read away from the
// cursor and reversed back by TrimPage).
func (f ListFilter) ScanAscending() bool { return f.Ascending != (f.Before != "") }

// TrimPage cuts the one row past the page that a driver asked for, which
// tells whether more follow, and restores the list's order of a Before
// page.
func TrimPage[T any](items []T, f ListFilter) (page []T, more bool) {
	limit := f.PageLimit()
	more = len(items) > limit
	if more {
		items = items[:limit]
	}
	if f.Before != "" {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	return items, more
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
