package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/trail-audit/trail"
)

// OrganizationService implements trail.OrganizationService on PostgreSQL.
type OrganizationService struct{ db *DB }

var _ trail.OrganizationService = (*OrganizationService)(nil)

// NewOrganizationService returns an OrganizationService on db.
func NewOrganizationService(db *DB) *OrganizationService { return &OrganizationService{db: db} }

// now returns the clock in UTC at the precision of timestamptz.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// CreateOrganization stores org and records organization.created in its log.
func (s *OrganizationService) CreateOrganization(ctx context.Context, org *trail.Organization) error {
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return err
	}
	if org.ID == "" {
		org.ID = "org_" + s.db.ids.New(now)
	}
	if org.RetentionDays == 0 {
		org.RetentionDays = trail.DefaultRetentionDays
	}
	org.CreatedAt, org.UpdatedAt = now, now
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO organizations (id, name, retention_days, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)`,
			org.ID, org.Name, org.RetentionDays, now); err != nil {
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
		return nil
	})
}

const orgColumns = `id, name, retention_days, created_at, updated_at`

func scanOrg(row pgx.Row) (*trail.Organization, error) {
	var o trail.Organization
	if err := row.Scan(&o.ID, &o.Name, &o.RetentionDays, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return nil, err
	}
	o.CreatedAt, o.UpdatedAt = o.CreatedAt.UTC(), o.UpdatedAt.UTC()
	return &o, nil
}

// FindOrganizationByID returns ENOTFOUND for an unknown id.
func (s *OrganizationService) FindOrganizationByID(ctx context.Context, id string) (*trail.Organization, error) {
	o, err := scanOrg(s.db.pool.QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", id)
	} else if err != nil {
		return nil, fmt.Errorf("find organization: %w", err)
	}
	return o, nil
}

// FindOrganizations lists organizations by id.
func (s *OrganizationService) FindOrganizations(ctx context.Context, ids []string, f trail.ListFilter) ([]*trail.Organization, bool, error) {
	where, args := "true", []any{}
	if ids != nil {
		where, args = "id = ANY($1)", []any{ids}
	}
	q, args := listQuery(`SELECT `+orgColumns+` FROM organizations WHERE `+where, "id", args, f)
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find organizations: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*trail.Organization, error) { return scanOrg(r) })
	if err != nil {
		return nil, false, fmt.Errorf("find organizations: %w", err)
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}

// UpdateRetention sets the retention period and records the change.
func (s *OrganizationService) UpdateRetention(ctx context.Context, id string, days int) (*trail.Organization, error) {
	if days < 1 || days > trail.MaxRetentionDays {
		return nil, trail.Errorf(trail.EINVALID, "retention_period_in_days must be between 1 and %d.", trail.MaxRetentionDays)
	}
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return nil, err
	}
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var old int
		if err := tx.QueryRow(ctx, `SELECT retention_days FROM organizations WHERE id = $1 FOR UPDATE`, id).Scan(&old); errors.Is(err, pgx.ErrNoRows) {
			return trail.Errorf(trail.ENOTFOUND, "Organization not found: '%s'.", id)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE organizations SET retention_days = $1, updated_at = $2 WHERE id = $3`, days, now, id); err != nil {
			return err
		}
		ev := trail.AuditEvent(ctx, trail.ActionRetentionUpdated, now,
			trail.Metadata{"previous_retention_period_in_days": jsonInt(old), "retention_period_in_days": jsonInt(days)},
			trail.Target{ID: id, Type: "organization"})
		return s.db.appendOwn(ctx, tx, id, ev)
	})
	if err != nil {
		return nil, err
	}
	return s.FindOrganizationByID(ctx, id)
}

// listQuery adds keyset paging on a text key column to a query; args
// holds the query's parameters so far.
func listQuery(base, key string, args []any, f trail.ListFilter) (string, []any) {
	if c, greater, ok := f.Bound(); ok {
		op := "<"
		if greater {
			op = ">"
		}
		args = append(args, c)
		base += " AND " + key + " " + op + " $" + strconv.Itoa(len(args))
	}
	dir := "DESC"
	if f.ScanAscending() {
		dir = "ASC"
	}
	return base + " ORDER BY " + key + " " + dir + " LIMIT " + strconv.Itoa(f.PageLimit()+1), args
}

func jsonInt(n int) any { return json.Number(strconv.Itoa(n)) }
