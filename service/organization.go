package service

import (
	"context"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Organizations implements trail.OrganizationService.
type Organizations struct{ *base }

var _ trail.OrganizationService = (*Organizations)(nil)

// CreateOrganization stores org and records organization.created in its
// log.
func (s *Organizations) CreateOrganization(ctx context.Context, org *trail.Organization) error {
	if err := org.Validate(); err != nil {
		return err
	}
	now := s.d.Now().UTC()
	if org.ID == "" {
		org.ID = s.newID("org_")
	}
	if org.RetentionDays == 0 {
		org.RetentionDays = trail.DefaultRetentionDays
	}
	org.CreatedAt, org.UpdatedAt = now, now
	return s.d.InTx(ctx, func(x store.Executor) error {
		if err := x.OrganizationInsert(ctx, org); trail.ErrorCode(err) == trail.ECONFLICT {
			return trail.ErrOrganizationExists(org.ID)
		} else if err != nil {
			return notFound(err, nil, "create organization")
		}
		return record(ctx, x, org.ID, trail.OrganizationCreatedEvent(ctx, org))
	})
}

// FindOrganizationByID returns ENOTFOUND for an unknown id.
func (s *Organizations) FindOrganizationByID(ctx context.Context, id string) (*trail.Organization, error) {
	o, err := s.d.OrganizationGet(ctx, id, false)
	return o, notFound(err, trail.ErrOrganizationNotFound(id), "find organization")
}

// FindOrganizations lists organizations, all (ids nil) or those of ids.
func (s *Organizations) FindOrganizations(ctx context.Context, ids []string, f trail.ListFilter) ([]*trail.Organization, bool, error) {
	list, err := s.d.OrganizationList(ctx, ids, f)
	return page(list, notFound(err, nil, "find organizations"), f)
}

// UpdateRetention sets the retention period and records the change.
func (s *Organizations) UpdateRetention(ctx context.Context, id string, days int) (*trail.Organization, error) {
	if !trail.ValidRetention(days) {
		return nil, trail.ErrInvalidRetention()
	}
	now := s.d.Now().UTC()
	err := s.d.InTx(ctx, func(x store.Executor) error {
		org, err := x.OrganizationGet(ctx, id, true)
		if err != nil {
			return notFound(err, trail.ErrOrganizationNotFound(id), "update retention")
		}
		if err := x.OrganizationSetRetention(ctx, id, days, now); err != nil {
			return err
		}
		return record(ctx, x, id, trail.RetentionUpdatedEvent(ctx, id, org.RetentionDays, days, now))
	})
	if err != nil {
		return nil, err
	}
	return s.FindOrganizationByID(ctx, id)
}
