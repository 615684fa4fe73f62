package service

import (
	"context"

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
