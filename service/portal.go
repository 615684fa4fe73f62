package service

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/store"
)

// Portal implements trail.PortalService: links that open one session
// each. Tokens and session secrets are stored only as hashes.
type Portal struct{ *base }

var _ trail.PortalService = (*Portal)(nil)

// CreatePortalLink stores a new link, valid for trail.PortalLinkTTL;
// links whose link and session are both over go at the same time.
func (s *Portal) CreatePortalLink(ctx context.Context, l *trail.PortalLink) error {
	now := s.d.Now().UTC()
	l.ID = s.newID("portal_")
	l.CreatedAt, l.ExpiresAt = now, now.Add(trail.PortalLinkTTL)
	l.Token = ident.Token("")
	return s.d.InTx(ctx, func(x store.Executor) error {
		if _, err := x.OrganizationGet(ctx, l.OrganizationID, false); err != nil {
			return notFound(err, trail.ErrOrganizationNotFound(l.OrganizationID), "create portal link")
		}
		if err := x.PortalLinksDeleteOver(ctx, now); err != nil {
			return notFound(err, nil, "create portal link")
		}
		return notFound(x.PortalLinkInsert(ctx, l, trail.SecretHash(l.Token)), nil, "create portal link")
	})
}

// OpenPortalLink turns an unused, unexpired link into a session of
// trail.PortalSessionTTL and records portal_session.created.
func (s *Portal) OpenPortalLink(ctx context.Context, token, sessionSecret string) (*trail.PortalSession, error) {
	now := s.d.Now().UTC()
	hash := trail.SecretHash(token)
	var p *trail.PortalSession
	err := s.d.InTx(ctx, func(x store.Executor) error {
		l, err := x.PortalLinkState(ctx, hash, true)
		switch {
		case err != nil:
			return notFound(err, trail.Errorf(trail.ENOTFOUND, "This link is not valid: ask for a new one."), "open portal link")
		case l.Opened:
			return trail.Errorf(trail.ENOTFOUND, "This link was already used: a link opens one session. Ask for a new one.")
		case !l.ExpiresAt.After(now):
			return trail.Errorf(trail.ENOTFOUND, "This link expired: links are valid for 5 minutes. Ask for a new one.")
		}
		if p, err = x.PortalLinkOpen(ctx, hash, trail.SecretHash(sessionSecret), now, now.Add(trail.PortalSessionTTL)); err != nil {
			return notFound(err, nil, "open portal link")
		}
		return record(ctx, x, p.OrganizationID, p.AuditEvent(ctx, now))
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// FindPortalSession returns the open session with this secret.
func (s *Portal) FindPortalSession(ctx context.Context, sessionSecret string) (*trail.PortalSession, error) {
	p, err := s.d.PortalSessionGet(ctx, trail.SecretHash(sessionSecret), s.d.Now().UTC())
	return p, notFound(err, trail.Errorf(trail.EUNAUTHORIZED, "Your session has ended: open a new link from your application."), "find portal session")
}

// EndPortalSession ends the session with this secret, at once.
func (s *Portal) EndPortalSession(ctx context.Context, sessionSecret string) error {
	return notFound(s.d.PortalSessionEnd(ctx, trail.SecretHash(sessionSecret), s.d.Now().UTC()), nil, "end portal session")
}

// SetPortalSessionUTC records the session's choice of UTC or its person's
// zone.
func (s *Portal) SetPortalSessionUTC(ctx context.Context, sessionSecret string, utc bool) error {
	return notFound(s.d.PortalSessionSetUTC(ctx, trail.SecretHash(sessionSecret), utc), nil, "set portal session zone")
}

// SaveView stores a view after checking its name and query, the
// organization's count and that no view of it has the name.
func (s *Portal) SaveView(ctx context.Context, v *trail.SavedView) error {
	if ps := v.Validate(); len(ps) > 0 {
		return &trail.Error{Code: trail.EINVALID, Message: "The view was not saved: its " + strings.TrimPrefix(ps[0].Path, "/") + " " + ps[0].Message + ".", Problems: ps}
	}
	now := s.d.Now().UTC()
	v.ID, v.CreatedAt = s.newID("audit_log_view_"), now
	return s.d.InTx(ctx, func(x store.Executor) error {
		// The organization's row, locked, makes saves of one organization
		// take turns, so that the count and the names hold.
		if _, err := x.OrganizationGet(ctx, v.OrganizationID, true); err != nil {
			return notFound(err, trail.ErrOrganizationNotFound(v.OrganizationID), "save view")
		}
		views, err := x.ViewList(ctx, v.OrganizationID)
		if err != nil {
			return fmt.Errorf("save view: %w", err)
		}
		if len(views) >= trail.MaxSavedViews {
			return trail.Errorf(trail.ECONFLICT, "An organization keeps at most %d views: delete one first.", trail.MaxSavedViews)
		}
		for _, o := range views {
			if strings.EqualFold(o.Name, v.Name) {
				return &trail.Error{Code: trail.ECONFLICT, Message: fmt.Sprintf("A view named %q exists: choose another name, or delete it first.", o.Name),
					Problems: []trail.Problem{{Path: "/name", Message: "is taken"}}}
			}
		}
		if err := record(ctx, x, v.OrganizationID, v.AuditEvent(ctx, trail.ActionViewCreated, now)); err != nil {
			return err
		}
		return notFound(x.ViewInsert(ctx, v), nil, "save view")
	})
}

// FindViews returns the organization's views, by name.
func (s *Portal) FindViews(ctx context.Context, orgID string) ([]*trail.SavedView, error) {
	views, err := s.d.ViewList(ctx, orgID)
	if err != nil {
		return nil, fmt.Errorf("find views: %w", err)
	}
	slices.SortFunc(views, func(a, b *trail.SavedView) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
	})
	return views, nil
}

// DeleteView removes a view and records it.
func (s *Portal) DeleteView(ctx context.Context, orgID, id string) error {
	now := s.d.Now().UTC()
	return s.d.InTx(ctx, func(x store.Executor) error {
		views, err := x.ViewList(ctx, orgID)
		if err != nil {
			return fmt.Errorf("delete view: %w", err)
		}
		i := slices.IndexFunc(views, func(v *trail.SavedView) bool { return v.ID == id })
		if i < 0 {
			return trail.Errorf(trail.ENOTFOUND, "View not found: '%s'.", id)
		}
		if ok, err := x.ViewDelete(ctx, orgID, id); err != nil || !ok {
			return notFound(cmp.Or(err, store.ErrNotFound), trail.Errorf(trail.ENOTFOUND, "View not found: '%s'.", id), "delete view")
		}
		return record(ctx, x, orgID, views[i].AuditEvent(ctx, trail.ActionViewDeleted, now))
	})
}
