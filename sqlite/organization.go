package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/trail-audit/trail"
)

// OrganizationService implements trail.OrganizationService on SQLite.
type OrganizationService struct{ db *DB }

var _ trail.OrganizationService = (*OrganizationService)(nil)

// NewOrganizationService returns an OrganizationService on db.
func NewOrganizationService(db *DB) *OrganizationService { return &OrganizationService{db: db} }

// CreateOrganization stores org and records organization.created in its log.
func (s *OrganizationService) CreateOrganization(ctx context.Context, org *trail.Organization) error {
	now := s.db.Now().UTC()
	if org.ID == "" {
		org.ID = "org_" + s.db.ids.New(now)
	}
	if org.RetentionDays == 0 {
		org.RetentionDays = trail.DefaultRetentionDays
	}
	org.CreatedAt, org.UpdatedAt = now, now
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO organizations (id, name, retention_days, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		org.ID, org.Name, org.RetentionDays, formatTime(now), formatTime(now)); err != nil {
		if trail.ErrorCode(interpretError(err)) == trail.ECONFLICT {
			return trail.Errorf(trail.ECONFLICT, "Organization already exists: '%s'.", org.ID)
		}
		return fmt.Errorf("create organization: %w", err)
	}
	ev := trail.AuditEvent(ctx, trail.ActionOrganizationCreated, now, trail.Metadata{"name": org.Name},
		trail.Target{ID: org.ID, Type: "organization", Name: org.Name})
	if err := s.db.appendOwn(ctx, tx, org.ID, ev); err != nil {
		return fmt.Errorf("record organization.created: %w", err)
	}
	return tx.Commit()
}

const orgColumns = `id, name, retention_days, created_at, updated_at`

func scanOrg(row interface{ Scan(...any) error }) (*trail.Organization, error) {
	var o trail.Organization
	var created, updated string
	if err := row.Scan(&o.ID, &o.Name, &o.RetentionDays, &created, &updated); err != nil {
		return nil, err
	}
	o.CreatedAt, o.UpdatedAt = parseTime(created), parseTime(updated)
	return &o, nil
}

// FindOrganizationByID returns ENOTFOUND for an unknown id.
func (s *OrganizationService) FindOrganizationByID(ctx context.Context, id string) (*trail.Organization, error) {
	o, err := scanOrg(s.db.reader.QueryRowContext(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = ?`, id))
	if err == sql.ErrNoRows {
		return nil, trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", id)
	} else if err != nil {
		return nil, fmt.Errorf("find organization: %w", err)
	}
	return o, nil
}

// FindOrganizations lists organizations by id.
func (s *OrganizationService) FindOrganizations(ctx context.Context, ids []string, f trail.ListFilter) ([]*trail.Organization, bool, error) {
	where, args := "1 = 1", []any{}
	if ids != nil {
		where = "id IN (" + placeholders(len(ids)) + ")"
		if len(ids) == 0 {
			where = "0 = 1"
		}
		for _, id := range ids {
			args = append(args, id)
		}
	}
	q, args := listQuery(`SELECT `+orgColumns+` FROM organizations WHERE `+where, "id", args, f)
	rows, err := s.db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find organizations: %w", err)
	}
	defer rows.Close()
	var out []*trail.Organization
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}

// UpdateRetention sets the retention period and records the change.
func (s *OrganizationService) UpdateRetention(ctx context.Context, id string, days int) (*trail.Organization, error) {
	if days < 1 || days > trail.MaxRetentionDays {
		return nil, trail.Errorf(trail.EINVALID, "retention_period_in_days must be between 1 and %d.", trail.MaxRetentionDays)
	}
	now := s.db.Now().UTC()
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var old int
	if err := tx.QueryRowContext(ctx, `SELECT retention_days FROM organizations WHERE id = ?`, id).Scan(&old); err == sql.ErrNoRows {
		return nil, trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", id)
	} else if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE organizations SET retention_days = ?, updated_at = ? WHERE id = ?`, days, formatTime(now), id); err != nil {
		return nil, err
	}
	ev := trail.AuditEvent(ctx, trail.ActionRetentionUpdated, now,
		trail.Metadata{"previous_retention_period_in_days": jsonInt(old), "retention_period_in_days": jsonInt(days)},
		trail.Target{ID: id, Type: "organization"})
	if err := s.db.appendOwn(ctx, tx, id, ev); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return s.FindOrganizationByID(ctx, id)
}

// listQuery adds keyset paging on a text key column to a query.
func listQuery(base, key string, args []any, f trail.ListFilter) (string, []any) {
	if c, greater, ok := f.Bound(); ok {
		op := "<"
		if greater {
			op = ">"
		}
		base += " AND " + key + " " + op + " ?"
		args = append(args, c)
	}
	dir := "DESC"
	if f.ScanAscending() {
		dir = "ASC"
	}
	return base + " ORDER BY " + key + " " + dir + " LIMIT " + strconv.Itoa(f.PageLimit()+1), args
}

func jsonInt(n int) any { return json.Number(strconv.Itoa(n)) }
