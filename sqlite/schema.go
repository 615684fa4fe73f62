package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/trail-audit/trail"
)

// SchemaService implements trail.SchemaService on SQLite.
type SchemaService struct{ db *DB }

var _ trail.SchemaService = (*SchemaService)(nil)

// NewSchemaService returns a SchemaService on db.
func NewSchemaService(db *DB) *SchemaService { return &SchemaService{db: db} }

type schemaBody struct {
	Targets  []trail.SchemaTarget `json:"targets"`
	Actor    *trail.SchemaActor   `json:"actor,omitempty"`
	Metadata json.RawMessage      `json:"metadata,omitempty"`
}

// CreateSchema stores the next version of an action's schema.
func (s *SchemaService) CreateSchema(ctx context.Context, sc *trail.Schema) error {
	if !trail.ValidAction(sc.Action) {
		return trail.Errorf(trail.EINVALID, "Invalid action name %q.", sc.Action)
	}
	now := s.db.Now().UTC()
	body, err := json.Marshal(schemaBody{Targets: sc.Targets, Actor: sc.Actor, Metadata: sc.Metadata})
	if err != nil {
		return err
	}
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var latest int
	err = tx.QueryRowContext(ctx, `SELECT latest_version FROM actions WHERE name = ?`, sc.Action).Scan(&latest)
	switch {
	case err == sql.ErrNoRows:
		_, err = tx.ExecContext(ctx, `INSERT INTO actions (name, latest_version, created_at, updated_at) VALUES (?, 1, ?, ?)`, sc.Action, formatTime(now), formatTime(now))
	case err == nil:
		_, err = tx.ExecContext(ctx, `UPDATE actions SET latest_version = ?, updated_at = ? WHERE name = ?`, latest+1, formatTime(now), sc.Action)
	}
	if err != nil {
		return fmt.Errorf("create action: %w", err)
	}
	sc.Version, sc.CreatedAt = latest+1, now
	if _, err := tx.ExecContext(ctx, `INSERT INTO schemas (action, version, body, created_at) VALUES (?, ?, ?, ?)`, sc.Action, sc.Version, string(body), formatTime(now)); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	ev := trail.AuditEvent(ctx, trail.ActionSchemaCreated, now, trail.Metadata{"version": jsonInt(sc.Version)},
		trail.Target{ID: sc.Action, Type: "audit_log_action"})
	if err := s.db.appendOwn(ctx, tx, trail.SystemOrganizationID, ev); err != nil {
		return fmt.Errorf("record audit_log_schema.created: %w", err)
	}
	return tx.Commit()
}

func scanSchema(row interface{ Scan(...any) error }) (*trail.Schema, error) {
	var sc trail.Schema
	var body, created string
	if err := row.Scan(&sc.Action, &sc.Version, &body, &created); err != nil {
		return nil, err
	}
	var b schemaBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	sc.Targets, sc.Actor, sc.Metadata, sc.CreatedAt = b.Targets, b.Actor, b.Metadata, parseTime(created)
	return &sc, nil
}

// FindSchema returns one version of an action's schema.
func (s *SchemaService) FindSchema(ctx context.Context, action string, version int) (*trail.Schema, error) {
	sc, err := scanSchema(s.db.reader.QueryRowContext(ctx, `SELECT action, version, body, created_at FROM schemas WHERE action = ? AND version = ?`, action, version))
	if err == sql.ErrNoRows {
		return nil, trail.Errorf(trail.ENOTFOUND, "Schema version %d of action '%s' not found.", version, action)
	} else if err != nil {
		return nil, fmt.Errorf("find schema: %w", err)
	}
	return sc, nil
}

// HasSchemas reports whether the action has a schema.
func (s *SchemaService) HasSchemas(ctx context.Context, action string) (bool, error) {
	var n int
	err := s.db.reader.QueryRowContext(ctx, `SELECT COUNT(*) FROM actions WHERE name = ?`, action).Scan(&n)
	return n > 0, err
}

// FindSchemas lists the versions of an action. Keys are versions.
func (s *SchemaService) FindSchemas(ctx context.Context, action string, f trail.ListFilter) ([]*trail.Schema, bool, error) {
	if ok, err := s.HasSchemas(ctx, action); err != nil {
		return nil, false, err
	} else if !ok {
		return nil, false, trail.Errorf(trail.ENOTFOUND, "Audit Log Action not found: '%s'.", action)
	}
	// Versions compare as numbers: page on the integer column.
	args := []any{action}
	q := `SELECT action, version, body, created_at FROM schemas WHERE action = ?`
	if c, greater, ok := f.Bound(); ok {
		n, err := strconv.Atoi(c)
		if err != nil {
			return nil, false, trail.Errorf(trail.EINVALID, "Invalid cursor.")
		}
		op := "<"
		if greater {
			op = ">"
		}
		q += " AND version " + op + " ?"
		args = append(args, n)
	}
	dir := "DESC"
	if f.ScanAscending() {
		dir = "ASC"
	}
	q += " ORDER BY version " + dir + " LIMIT " + strconv.Itoa(f.PageLimit()+1)
	rows, err := s.db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find schemas: %w", err)
	}
	defer rows.Close()
	var out []*trail.Schema
	for rows.Next() {
		sc, err := scanSchema(rows)
		if err != nil {
			return nil, false, err
		}
		out = append(out, sc)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}

// FindActions lists actions with their latest schema.
func (s *SchemaService) FindActions(ctx context.Context, f trail.ListFilter) ([]*trail.Action, bool, error) {
	q, args := listQuery(`SELECT a.name, a.created_at, a.updated_at, s.action, s.version, s.body, s.created_at
		FROM actions a JOIN schemas s ON s.action = a.name AND s.version = a.latest_version WHERE 1 = 1`, "a.name", nil, f)
	rows, err := s.db.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find actions: %w", err)
	}
	defer rows.Close()
	var out []*trail.Action
	for rows.Next() {
		var a trail.Action
		var created, updated string
		var sc trail.Schema
		var body, screated string
		if err := rows.Scan(&a.Name, &created, &updated, &sc.Action, &sc.Version, &body, &screated); err != nil {
			return nil, false, err
		}
		var b schemaBody
		if err := json.Unmarshal([]byte(body), &b); err != nil {
			return nil, false, err
		}
		sc.Targets, sc.Actor, sc.Metadata, sc.CreatedAt = b.Targets, b.Actor, b.Metadata, parseTime(screated)
		a.Schema, a.CreatedAt, a.UpdatedAt = &sc, parseTime(created), parseTime(updated)
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}
