package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
)

// PortalService stores portal links and the sessions they open.
type PortalService struct{ db *DB }

var _ trail.PortalService = (*PortalService)(nil)

// NewPortalService returns a PortalService on db.
func NewPortalService(db *DB) *PortalService { return &PortalService{db: db} }

// CreatePortalLink stores a new link; rows whose link and session are
// both over go at the same time.
func (s *PortalService) CreatePortalLink(ctx context.Context, l *trail.PortalLink) error {
	now := s.db.now()
	l.ID = "portal_" + s.db.ids.New(now)
	l.CreatedAt, l.ExpiresAt = now, now.Add(trail.PortalLinkTTL)
	l.Token = ident.Token("")
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM organizations WHERE id = $1`, l.OrganizationID).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", l.OrganizationID)
		} else if err != nil {
			return fmt.Errorf("create portal link: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM portal_links WHERE coalesce(session_expires_at, expires_at) < $1`, now); err != nil {
			return fmt.Errorf("create portal link: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO portal_links (id, organization_id, intent, user_id, user_email, user_name, role, token_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, l.ID, l.OrganizationID, l.Intent, l.User.ID, l.User.Email, l.User.Name, l.Role,
			trail.SecretHash(l.Token), now, l.ExpiresAt); err != nil {
			return fmt.Errorf("create portal link: %w", err)
		}
		return nil
	})
}

const portalColumns = `id, organization_id, intent, user_id, user_email, user_name, role, opened_at, session_expires_at`

func scanSession(row pgx.Row) (*trail.PortalSession, error) {
	var p trail.PortalSession
	var opened, expires *time.Time
	if err := row.Scan(&p.ID, &p.OrganizationID, &p.Intent, &p.User.ID, &p.User.Email, &p.User.Name, &p.Role, &opened, &expires); err != nil {
		return nil, err
	}
	if opened != nil {
		p.OpenedAt = opened.UTC()
	}
	if expires != nil {
		p.ExpiresAt = expires.UTC()
	}
	return &p, nil
}

// OpenPortalLink turns an unused, unexpired link into a session and
// records portal_session.created.
func (s *PortalService) OpenPortalLink(ctx context.Context, token, sessionSecret string) (*trail.PortalSession, error) {
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return nil, err
	}
	var p *trail.PortalSession
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var opened *time.Time
		var expires time.Time
		err := tx.QueryRow(ctx, `SELECT opened_at, expires_at FROM portal_links WHERE token_hash = $1 FOR UPDATE`,
			trail.SecretHash(token)).Scan(&opened, &expires)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return trail.Errorf(trail.ENOTFOUND, "This link is not valid: ask for a new one.")
		case err != nil:
			return fmt.Errorf("open portal link: %w", err)
		case opened != nil:
			return trail.Errorf(trail.ENOTFOUND, "This link was already used: a link opens one session. Ask for a new one.")
		case !expires.After(now):
			return trail.Errorf(trail.ENOTFOUND, "This link expired: links are valid for 5 minutes. Ask for a new one.")
		}
		p, err = scanSession(tx.QueryRow(ctx, `UPDATE portal_links SET opened_at = $1, session_hash = $2, session_expires_at = $3
			WHERE token_hash = $4 RETURNING `+portalColumns, now, trail.SecretHash(sessionSecret), now.Add(trail.PortalSessionTTL),
			trail.SecretHash(token)))
		if err != nil {
			return fmt.Errorf("open portal link: %w", err)
		}
		if err := s.db.appendOwn(ctx, tx, p.OrganizationID, p.AuditEvent(ctx, now)); err != nil {
			return fmt.Errorf("record %s: %w", trail.ActionPortalSessionCreated, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// FindPortalSession returns the open session with this secret.
func (s *PortalService) FindPortalSession(ctx context.Context, sessionSecret string) (*trail.PortalSession, error) {
	p, err := scanSession(s.db.pool.QueryRow(ctx, `SELECT `+portalColumns+` FROM portal_links
		WHERE session_hash = $1 AND ended_at IS NULL AND session_expires_at > $2`, trail.SecretHash(sessionSecret), s.db.now()))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "Your session has ended: open a new link from your application.")
	} else if err != nil {
		return nil, fmt.Errorf("find portal session: %w", err)
	}
	return p, nil
}

// EndPortalSession ends the session with this secret.
func (s *PortalService) EndPortalSession(ctx context.Context, sessionSecret string) error {
	if _, err := s.db.pool.Exec(ctx, `UPDATE portal_links SET ended_at = $1 WHERE session_hash = $2 AND ended_at IS NULL`,
		s.db.now(), trail.SecretHash(sessionSecret)); err != nil {
		return fmt.Errorf("end portal session: %w", err)
	}
	return nil
}
