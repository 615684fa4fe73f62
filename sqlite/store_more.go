package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// listQuery adds keyset paging on a text key column to a query.
func listQuery(base, key string, args []any, f trail.ListFilter) (string, []any) {
	return store.ListQuery(base, key, args, f, nil, param)
}

// param is SQLite's n-th query parameter.
func param(int) string { return "?" }

// Schemas.

func scanSchema(row interface{ Scan(...any) error }) (*trail.Schema, error) {
	var sc trail.Schema
	var body, created string
	if err := row.Scan(&sc.Action, &sc.Version, &body, &created); err != nil {
		return nil, err
	}
	sc.CreatedAt = parseTime(created)
	return &sc, store.DecodeSchema(&sc, []byte(body))
}

func (x *executor) ActionBumpVersion(ctx context.Context, action string, now time.Time) (int, error) {
	var v int
	err := x.w().QueryRowContext(ctx, `INSERT INTO actions (name, latest_version, created_at, updated_at) VALUES (?, 1, ?, ?)
		ON CONFLICT (name) DO UPDATE SET latest_version = latest_version + 1, updated_at = excluded.updated_at
		RETURNING latest_version`, action, formatTime(now), formatTime(now)).Scan(&v)
	return v, interpretError(err)
}

func (x *executor) SchemaInsert(ctx context.Context, sc *trail.Schema, body []byte) error {
	_, err := x.exec(ctx, `INSERT INTO schemas (action, version, body, created_at) VALUES (?, ?, ?, ?)`, sc.Action, sc.Version, string(body), formatTime(sc.CreatedAt))
	return err
}

func (x *executor) SchemaGet(ctx context.Context, action string, version int) (*trail.Schema, error) {
	sc, err := scanSchema(x.r().QueryRowContext(ctx, `SELECT action, version, body, created_at FROM schemas WHERE action = ? AND version = ?`, action, version))
	return sc, noRows(err)
}

func (x *executor) ActionExists(ctx context.Context, action string) (bool, error) {
	var n int
	err := x.r().QueryRowContext(ctx, `SELECT COUNT(*) FROM actions WHERE name = ?`, action).Scan(&n)
	return n > 0, interpretError(err)
}

func (x *executor) SchemaList(ctx context.Context, action string, after int, f trail.ListFilter) ([]*trail.Schema, error) {
	q, args := store.ListQuery(`SELECT action, version, body, created_at FROM schemas WHERE action = ?`, "version", []any{action}, f, after, param)
	rows, err := x.r().QueryContext(ctx, q, args...)
	return collect(rows, err, scanSchema)
}

func (x *executor) ActionList(ctx context.Context, f trail.ListFilter) ([]*trail.Action, error) {
	q, args := listQuery(`SELECT a.name, a.created_at, a.updated_at, s.action, s.version, s.body, s.created_at
		FROM actions a JOIN schemas s ON s.action = a.name AND s.version = a.latest_version WHERE 1 = 1`, "a.name", nil, f)
	rows, err := x.r().QueryContext(ctx, q, args...)
	return collect(rows, err, func(r interface{ Scan(...any) error }) (*trail.Action, error) {
		var a trail.Action
		var created, updated, body, screated string
		sc := &trail.Schema{}
		if err := r.Scan(&a.Name, &created, &updated, &sc.Action, &sc.Version, &body, &screated); err != nil {
			return nil, err
		}
		sc.CreatedAt = parseTime(screated)
		a.Schema, a.CreatedAt, a.UpdatedAt = sc, parseTime(created), parseTime(updated)
		return &a, store.DecodeSchema(sc, []byte(body))
	})
}

// Portal links and sessions.

const portalColumns = `id, organization_id, intent, user_id, user_email, user_name, user_time_zone, user_locale, role, return_to, show_utc, opened_at, session_expires_at`

func scanSession(row *sql.Row) (*trail.PortalSession, error) {
	var p trail.PortalSession
	var opened, expires sql.NullInt64
	if err := row.Scan(&p.ID, &p.OrganizationID, &p.Intent, &p.User.ID, &p.User.Email, &p.User.Name, &p.User.TimeZone, &p.User.Locale, &p.Role, &p.ReturnTo, &p.ShowUTC, &opened, &expires); err != nil {
		return nil, noRows(err)
	}
	p.OpenedAt, p.ExpiresAt = time.Unix(0, opened.Int64).UTC(), time.Unix(0, expires.Int64).UTC()
	return &p, nil
}

func (x *executor) PortalLinkInsert(ctx context.Context, l *trail.PortalLink, tokenHash []byte) error {
	_, err := x.exec(ctx, `INSERT INTO portal_links (id, organization_id, intent, user_id, user_email, user_name, user_time_zone, user_locale, role, return_to,
		token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, l.ID, l.OrganizationID, l.Intent, l.User.ID, l.User.Email, l.User.Name,
		l.User.TimeZone, l.User.Locale, l.Role, l.ReturnTo, tokenHash, l.CreatedAt.UnixNano(), l.ExpiresAt.UnixNano())
	return err
}

func (x *executor) PortalLinksDeleteOver(ctx context.Context, now time.Time) error {
	_, err := x.exec(ctx, `DELETE FROM portal_links WHERE coalesce(session_expires_at, expires_at) < ?`, now.UnixNano())
	return err
}

func (x *executor) PortalLinkState(ctx context.Context, tokenHash []byte, lock bool) (*store.PortalLinkState, error) {
	var opened sql.NullInt64
	var expires int64
	if err := x.r().QueryRowContext(ctx, `SELECT opened_at, expires_at FROM portal_links WHERE token_hash = ?`, tokenHash).Scan(&opened, &expires); err != nil {
		return nil, noRows(err)
	}
	return &store.PortalLinkState{Opened: opened.Valid, ExpiresAt: time.Unix(0, expires).UTC()}, nil
}

func (x *executor) PortalLinkOpen(ctx context.Context, tokenHash, sessionHash []byte, now, expires time.Time) (*trail.PortalSession, error) {
	return scanSession(x.w().QueryRowContext(ctx, `UPDATE portal_links SET opened_at = ?, session_hash = ?, session_expires_at = ?
		WHERE token_hash = ? RETURNING `+portalColumns, now.UnixNano(), sessionHash, expires.UnixNano(), tokenHash))
}

func (x *executor) PortalSessionGet(ctx context.Context, sessionHash []byte, now time.Time) (*trail.PortalSession, error) {
	return scanSession(x.r().QueryRowContext(ctx, `SELECT `+portalColumns+` FROM portal_links
		WHERE session_hash = ? AND ended_at IS NULL AND session_expires_at > ?`, sessionHash, now.UnixNano()))
}

func (x *executor) PortalSessionSetUTC(ctx context.Context, sessionHash []byte, utc bool) error {
	_, err := x.exec(ctx, `UPDATE portal_links SET show_utc = ? WHERE session_hash = ? AND ended_at IS NULL`, utc, sessionHash)
	return err
}

func (x *executor) ViewInsert(ctx context.Context, v *trail.SavedView) error {
	_, err := x.exec(ctx, `INSERT INTO saved_views (organization_id, id, name, query, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		v.OrganizationID, v.ID, v.Name, v.Query, v.CreatedBy, formatTime(v.CreatedAt))
	return err
}

func (x *executor) ViewList(ctx context.Context, orgID string) ([]*trail.SavedView, error) {
	rows, err := x.r().QueryContext(ctx, `SELECT organization_id, id, name, query, created_by, created_at FROM saved_views WHERE organization_id = ?`, orgID)
	return collect(rows, err, func(r interface{ Scan(...any) error }) (*trail.SavedView, error) {
		var v trail.SavedView
		var created string
		err := r.Scan(&v.OrganizationID, &v.ID, &v.Name, &v.Query, &v.CreatedBy, &created)
		v.CreatedAt = parseTime(created)
		return &v, err
	})
}

func (x *executor) ViewDelete(ctx context.Context, orgID, id string) (bool, error) {
	return x.exec(ctx, `DELETE FROM saved_views WHERE organization_id = ? AND id = ?`, orgID, id)
}

func (x *executor) PortalSessionEnd(ctx context.Context, sessionHash []byte, now time.Time) error {
	_, err := x.exec(ctx, `UPDATE portal_links SET ended_at = ? WHERE session_hash = ? AND ended_at IS NULL`, now.UnixNano(), sessionHash)
	return err
}

// Idempotent responses: a claim is a row with status 0. The request's
// hash names it alone (it holds the API key's id); the organization of
// the key places rows on a distributed database only.

func (x *executor) ResponseClaimOrGet(ctx context.Context, k trail.ResponseKey, now time.Time) (*store.StoredResponse, bool, error) {
	var r store.StoredResponse
	var created int64
	err := x.w().QueryRowContext(ctx, `SELECT status, body, created_at FROM idempotent_responses WHERE key_hash = ?`, k.Hash[:]).Scan(&r.Status, &r.Body, &created)
	if err == sql.ErrNoRows {
		// The single writer: no one claims between the read and this.
		_, err := x.exec(ctx, `INSERT INTO idempotent_responses (key_hash, status, body, created_at) VALUES (?, 0, x'', ?)`, k.Hash[:], now.UnixNano())
		return nil, err == nil, err
	} else if err != nil {
		return nil, false, interpretError(err)
	}
	r.CreatedAt = time.Unix(0, created)
	return &r, false, nil
}

func (x *executor) ResponseReclaim(ctx context.Context, k trail.ResponseKey, now time.Time) error {
	_, err := x.exec(ctx, `UPDATE idempotent_responses SET status = 0, body = x'', created_at = ? WHERE key_hash = ?`, now.UnixNano(), k.Hash[:])
	return err
}

func (x *executor) ResponseFinish(ctx context.Context, k trail.ResponseKey, r *trail.StoredResponse, now time.Time) error {
	_, err := x.exec(ctx, `UPDATE idempotent_responses SET status = ?, body = ?, created_at = ? WHERE key_hash = ? AND status = 0`,
		r.Status, r.Body, now.UnixNano(), k.Hash[:])
	return err
}

func (x *executor) ResponseRelease(ctx context.Context, k trail.ResponseKey) error {
	_, err := x.exec(ctx, `DELETE FROM idempotent_responses WHERE key_hash = ? AND status = 0`, k.Hash[:])
	return err
}
