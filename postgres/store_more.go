package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Schemas.

func scanSchema(row pgx.Row) (*trail.Schema, error) {
	var sc trail.Schema
	var body string
	if err := row.Scan(&sc.Action, &sc.Version, &body, &sc.CreatedAt); err != nil {
		return nil, noRows(err)
	}
	sc.CreatedAt = sc.CreatedAt.UTC()
	return &sc, store.DecodeSchema(&sc, []byte(body))
}

// ActionBumpVersion numbers versions without gaps across nodes: the
// upsert locks the action's row until the transaction ends.
func (x *executor) ActionBumpVersion(ctx context.Context, action string, now time.Time) (int, error) {
	var v int
	err := x.q().QueryRow(ctx, `INSERT INTO actions (name, latest_version, created_at, updated_at) VALUES ($1, 1, $2, $2)
		ON CONFLICT (name) DO UPDATE SET latest_version = actions.latest_version + 1, updated_at = excluded.updated_at
		RETURNING latest_version`, action, now).Scan(&v)
	return v, interpretError(err)
}

func (x *executor) SchemaInsert(ctx context.Context, sc *trail.Schema, body []byte) error {
	_, err := x.exec(ctx, `INSERT INTO schemas (action, version, body, created_at) VALUES ($1, $2, $3, $4)`, sc.Action, sc.Version, string(body), sc.CreatedAt)
	return err
}

func (x *executor) SchemaGet(ctx context.Context, action string, version int) (*trail.Schema, error) {
	return scanSchema(x.q().QueryRow(ctx, `SELECT action, version, body, created_at FROM schemas WHERE action = $1 AND version = $2`, action, version))
}

func (x *executor) ActionExists(ctx context.Context, action string) (bool, error) {
	var ok bool
	err := x.q().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM actions WHERE name = $1)`, action).Scan(&ok)
	return ok, interpretError(err)
}

func (x *executor) SchemaList(ctx context.Context, action string, after int, f trail.ListFilter) ([]*trail.Schema, error) {
	q, args := store.ListQuery(`SELECT action, version, body, created_at FROM schemas WHERE action = $1`, "version", []any{action}, f, after, param)
	rows, err := x.q().Query(ctx, q, args...)
	return collectRows(rows, err, scanSchema)
}

func (x *executor) ActionList(ctx context.Context, f trail.ListFilter) ([]*trail.Action, error) {
	q, args := listQuery(`SELECT a.name, a.created_at, a.updated_at, s.action, s.version, s.body, s.created_at
		FROM actions a JOIN schemas s ON s.action = a.name AND s.version = a.latest_version WHERE true`, "a.name", nil, f)
	rows, err := x.q().Query(ctx, q, args...)
	return collectRows(rows, err, func(r pgx.Row) (*trail.Action, error) {
		var a trail.Action
		var body string
		sc := &trail.Schema{}
		if err := r.Scan(&a.Name, &a.CreatedAt, &a.UpdatedAt, &sc.Action, &sc.Version, &body, &sc.CreatedAt); err != nil {
			return nil, err
		}
		sc.CreatedAt, a.CreatedAt, a.UpdatedAt, a.Schema = sc.CreatedAt.UTC(), a.CreatedAt.UTC(), a.UpdatedAt.UTC(), sc
		return &a, store.DecodeSchema(sc, []byte(body))
	})
}

// Portal links and sessions.

const portalColumns = `id, organization_id, intent, user_id, user_email, user_name, user_time_zone, user_locale, role, return_to, show_utc, opened_at, session_expires_at`

func scanSession(row pgx.Row) (*trail.PortalSession, error) {
	var p trail.PortalSession
	var opened, expires *time.Time
	if err := row.Scan(&p.ID, &p.OrganizationID, &p.Intent, &p.User.ID, &p.User.Email, &p.User.Name, &p.User.TimeZone, &p.User.Locale, &p.Role, &p.ReturnTo, &p.ShowUTC, &opened, &expires); err != nil {
		return nil, noRows(err)
	}
	if opened != nil {
		p.OpenedAt = opened.UTC()
	}
	if expires != nil {
		p.ExpiresAt = expires.UTC()
	}
	return &p, nil
}

func (x *executor) PortalLinkInsert(ctx context.Context, l *trail.PortalLink, tokenHash []byte) error {
	_, err := x.exec(ctx, `INSERT INTO portal_links (id, organization_id, intent, user_id, user_email, user_name, user_time_zone, user_locale, role, return_to,
		token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`, l.ID, l.OrganizationID, l.Intent, l.User.ID, l.User.Email, l.User.Name,
		l.User.TimeZone, l.User.Locale, l.Role, l.ReturnTo, tokenHash, l.CreatedAt, l.ExpiresAt)
	return err
}

func (x *executor) PortalLinksDeleteOver(ctx context.Context, now time.Time) error {
	_, err := x.exec(ctx, `DELETE FROM portal_links WHERE coalesce(session_expires_at, expires_at) < $1`, now)
	return err
}

func (x *executor) PortalLinkState(ctx context.Context, tokenHash []byte, lock bool) (*store.PortalLinkState, error) {
	var opened *time.Time
	var expires time.Time
	err := x.q().QueryRow(ctx, `SELECT opened_at, expires_at FROM portal_links WHERE token_hash = $1`+x.forUpdate(lock), tokenHash).Scan(&opened, &expires)
	if err != nil {
		return nil, noRows(err)
	}
	return &store.PortalLinkState{Opened: opened != nil, ExpiresAt: expires.UTC()}, nil
}

func (x *executor) PortalLinkOpen(ctx context.Context, tokenHash, sessionHash []byte, now, expires time.Time) (*trail.PortalSession, error) {
	return scanSession(x.q().QueryRow(ctx, `UPDATE portal_links SET opened_at = $1, session_hash = $2, session_expires_at = $3
		WHERE token_hash = $4 RETURNING `+portalColumns, now, sessionHash, expires, tokenHash))
}

func (x *executor) PortalSessionGet(ctx context.Context, sessionHash []byte, now time.Time) (*trail.PortalSession, error) {
	return scanSession(x.q().QueryRow(ctx, `SELECT `+portalColumns+` FROM portal_links
		WHERE session_hash = $1 AND ended_at IS NULL AND session_expires_at > $2`, sessionHash, now))
}

func (x *executor) PortalSessionSetUTC(ctx context.Context, sessionHash []byte, utc bool) error {
	_, err := x.exec(ctx, `UPDATE portal_links SET show_utc = $1 WHERE session_hash = $2 AND ended_at IS NULL`, utc, sessionHash)
	return err
}

func (x *executor) ViewInsert(ctx context.Context, v *trail.SavedView) error {
	_, err := x.exec(ctx, `INSERT INTO saved_views (organization_id, id, name, query, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		v.OrganizationID, v.ID, v.Name, v.Query, v.CreatedBy, v.CreatedAt)
	return err
}

func (x *executor) ViewList(ctx context.Context, orgID string) ([]*trail.SavedView, error) {
	rows, err := x.q().Query(ctx, `SELECT organization_id, id, name, query, created_by, created_at FROM saved_views WHERE organization_id = $1`, orgID)
	return collectRows(rows, err, func(r pgx.Row) (*trail.SavedView, error) {
		var v trail.SavedView
		err := r.Scan(&v.OrganizationID, &v.ID, &v.Name, &v.Query, &v.CreatedBy, &v.CreatedAt)
		v.CreatedAt = v.CreatedAt.UTC()
		return &v, err
	})
}

func (x *executor) ViewDelete(ctx context.Context, orgID, id string) (bool, error) {
	return x.exec(ctx, `DELETE FROM saved_views WHERE organization_id = $1 AND id = $2`, orgID, id)
}

func (x *executor) PortalSessionEnd(ctx context.Context, sessionHash []byte, now time.Time) error {
	_, err := x.exec(ctx, `UPDATE portal_links SET ended_at = $1 WHERE session_hash = $2 AND ended_at IS NULL`, now, sessionHash)
	return err
}

// Idempotent responses: a claim is a row with status 0.

// ResponseClaimOrGet claims with an insert that does nothing on a row of
// another request; that row is then read and locked. A row released
// between the two statements is claimed again.
func (x *executor) ResponseClaimOrGet(ctx context.Context, k trail.ResponseKey, now time.Time) (*store.StoredResponse, bool, error) {
	for attempt := 0; attempt < 3; attempt++ {
		claimed, err := x.exec(ctx, `INSERT INTO idempotent_responses (organization_id, key_hash, status, body, created_at) VALUES ($1, $2, 0, '', $3) ON CONFLICT DO NOTHING`, k.OrganizationID, k.Hash[:], now.UnixNano())
		if err != nil || claimed {
			return nil, claimed, err
		}
		var r store.StoredResponse
		var created int64
		err = x.q().QueryRow(ctx, `SELECT status, body, created_at FROM idempotent_responses WHERE organization_id = $1 AND key_hash = $2`+x.forUpdate(true), k.OrganizationID, k.Hash[:]).Scan(&r.Status, &r.Body, &created)
		if err == nil {
			r.CreatedAt = time.Unix(0, created)
			return &r, false, nil
		} else if err = noRows(err); err != store.ErrNotFound {
			return nil, false, err
		}
	}
	return nil, false, store.ErrNotFound
}

func (x *executor) ResponseReclaim(ctx context.Context, k trail.ResponseKey, now time.Time) error {
	_, err := x.exec(ctx, `UPDATE idempotent_responses SET status = 0, body = '', created_at = $3 WHERE organization_id = $1 AND key_hash = $2`, k.OrganizationID, k.Hash[:], now.UnixNano())
	return err
}

func (x *executor) ResponseFinish(ctx context.Context, k trail.ResponseKey, r *trail.StoredResponse, now time.Time) error {
	_, err := x.exec(ctx, `UPDATE idempotent_responses SET status = $1, body = $2, created_at = $3 WHERE organization_id = $4 AND key_hash = $5 AND status = 0`,
		r.Status, r.Body, now.UnixNano(), k.OrganizationID, k.Hash[:])
	return err
}

func (x *executor) ResponseRelease(ctx context.Context, k trail.ResponseKey) error {
	_, err := x.exec(ctx, `DELETE FROM idempotent_responses WHERE organization_id = $1 AND key_hash = $2 AND status = 0`, k.OrganizationID, k.Hash[:])
	return err
}
