package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

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
	now := s.db.Now().UTC()
	l.ID = "portal_" + s.db.ids.New(now)
	l.CreatedAt, l.ExpiresAt = now, now.Add(trail.PortalLinkTTL)
	l.Token = ident.Token("")
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM organizations WHERE id = ?`, l.OrganizationID).Scan(&one); err == sql.ErrNoRows {
		return trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", l.OrganizationID)
	} else if err != nil {
		return fmt.Errorf("create portal link: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM portal_links WHERE coalesce(session_expires_at, expires_at) < ?`, now.UnixNano()); err != nil {
		return fmt.Errorf("create portal link: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO portal_links (id, organization_id, intent, user_id, user_email, user_name, role, token_hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.ID, l.OrganizationID, l.Intent, l.User.ID, l.User.Email, l.User.Name, l.Role,
		trail.SecretHash(l.Token), now.UnixNano(), l.ExpiresAt.UnixNano()); err != nil {
		return fmt.Errorf("create portal link: %w", err)
	}
	return tx.Commit()
}

const portalColumns = `id, organization_id, intent, user_id, user_email, user_name, role, opened_at, session_expires_at`

func scanSession(row *sql.Row) (*trail.PortalSession, error) {
	var p trail.PortalSession
	var opened, expires sql.NullInt64
	if err := row.Scan(&p.ID, &p.OrganizationID, &p.Intent, &p.User.ID, &p.User.Email, &p.User.Name, &p.Role, &opened, &expires); err != nil {
		return nil, err
	}
	p.OpenedAt, p.ExpiresAt = time.Unix(0, opened.Int64).UTC(), time.Unix(0, expires.Int64).UTC()
	return &p, nil
}

// OpenPortalLink turns an unused, unexpired link into a session and
// records portal_session.created.
func (s *PortalService) OpenPortalLink(ctx context.Context, token, sessionSecret string) (*trail.PortalSession, error) {
	now := s.db.Now().UTC()
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var opened sql.NullInt64
	var expires int64
	err = tx.QueryRowContext(ctx, `SELECT opened_at, expires_at FROM portal_links WHERE token_hash = ?`, trail.SecretHash(token)).Scan(&opened, &expires)
	switch {
	case err == sql.ErrNoRows:
		return nil, trail.Errorf(trail.ENOTFOUND, "This link is not valid: ask for a new one.")
	case err != nil:
		return nil, fmt.Errorf("open portal link: %w", err)
	case opened.Valid:
		return nil, trail.Errorf(trail.ENOTFOUND, "This link was already used: a link opens one session. Ask for a new one.")
	case expires <= now.UnixNano():
		return nil, trail.Errorf(trail.ENOTFOUND, "This link expired: links are valid for 5 minutes. Ask for a new one.")
	}
	p, err := scanSession(tx.QueryRowContext(ctx, `UPDATE portal_links SET opened_at = ?, session_hash = ?, session_expires_at = ?
		WHERE token_hash = ? RETURNING `+portalColumns, now.UnixNano(), trail.SecretHash(sessionSecret),
		now.Add(trail.PortalSessionTTL).UnixNano(), trail.SecretHash(token)))
	if err != nil {
		return nil, fmt.Errorf("open portal link: %w", err)
	}
	if err := s.db.appendOwn(ctx, tx, p.OrganizationID, p.AuditEvent(ctx, now)); err != nil {
		return nil, fmt.Errorf("record %s: %w", trail.ActionPortalSessionCreated, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return p, nil
}

// FindPortalSession returns the open session with this secret.
func (s *PortalService) FindPortalSession(ctx context.Context, sessionSecret string) (*trail.PortalSession, error) {
	p, err := scanSession(s.db.reader.QueryRowContext(ctx, `SELECT `+portalColumns+` FROM portal_links
		WHERE session_hash = ? AND ended_at IS NULL AND session_expires_at > ?`, trail.SecretHash(sessionSecret), s.db.Now().UnixNano()))
	if err == sql.ErrNoRows {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "Your session has ended: open a new link from your application.")
	} else if err != nil {
		return nil, fmt.Errorf("find portal session: %w", err)
	}
	return p, nil
}

// EndPortalSession ends the session with this secret.
func (s *PortalService) EndPortalSession(ctx context.Context, sessionSecret string) error {
	if _, err := s.db.writer.ExecContext(ctx, `UPDATE portal_links SET ended_at = ? WHERE session_hash = ? AND ended_at IS NULL`,
		s.db.Now().UnixNano(), trail.SecretHash(sessionSecret)); err != nil {
		return fmt.Errorf("end portal session: %w", err)
	}
	return nil
}
