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

// SchemaService implements trail.SchemaService on PostgreSQL.
type SchemaService struct{ db *DB }

var _ trail.SchemaService = (*SchemaService)(nil)

// NewSchemaService returns a SchemaService on db.
func NewSchemaService(db *DB) *SchemaService { return &SchemaService{db: db} }

type schemaBody struct {
	Targets  []trail.SchemaTarget `json:"targets"`
	Actor    *trail.SchemaActor   `json:"actor,omitempty"`
	Metadata json.RawMessage      `json:"metadata,omitempty"`
}

// CreateSchema stores the next version of an action's schema. The
// action's row lock numbers versions without gaps across nodes.
func (s *SchemaService) CreateSchema(ctx context.Context, sc *trail.Schema) error {
	if !trail.ValidAction(sc.Action) {
		return trail.Errorf(trail.EINVALID, "Invalid action name %q.", sc.Action)
	}
	now := s.db.now()
	if err := s.db.ensureMonth(ctx, now); err != nil {
		return err
	}
	body, err := json.Marshal(schemaBody{Targets: sc.Targets, Actor: sc.Actor, Metadata: sc.Metadata})
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		var latest int
		err := tx.QueryRow(ctx, `INSERT INTO actions (name, latest_version, created_at, updated_at) VALUES ($1, 1, $2, $2)
			ON CONFLICT (name) DO UPDATE SET latest_version = actions.latest_version + 1, updated_at = excluded.updated_at
			RETURNING latest_version`, sc.Action, now).Scan(&latest)
		if err != nil {
			return fmt.Errorf("create action: %w", err)
		}
		sc.Version, sc.CreatedAt = latest, now
		if _, err := tx.Exec(ctx, `INSERT INTO schemas (action, version, body, created_at) VALUES ($1, $2, $3, $4)`, sc.Action, sc.Version, string(body), now); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		ev := trail.AuditEvent(ctx, trail.ActionSchemaCreated, now, trail.Metadata{"version": jsonInt(sc.Version)},
			trail.Target{ID: sc.Action, Type: "audit_log_action"})
		if err := s.db.appendOwn(ctx, tx, trail.SystemOrganizationID, ev); err != nil {
			return fmt.Errorf("record audit_log_schema.created: %w", err)
		}
		return nil
	})
}

func scanSchema(row pgx.Row) (*trail.Schema, error) {
	var sc trail.Schema
	var body string
	if err := row.Scan(&sc.Action, &sc.Version, &body, &sc.CreatedAt); err != nil {
		return nil, err
	}
	return decodeSchema(&sc, body)
}

func decodeSchema(sc *trail.Schema, body string) (*trail.Schema, error) {
	var b schemaBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return nil, fmt.Errorf("decode schema: %w", err)
	}
	sc.Targets, sc.Actor, sc.Metadata, sc.CreatedAt = b.Targets, b.Actor, b.Metadata, sc.CreatedAt.UTC()
	return sc, nil
}

// FindSchema returns one version of an action's schema.
func (s *SchemaService) FindSchema(ctx context.Context, action string, version int) (*trail.Schema, error) {
	sc, err := scanSchema(s.db.pool.QueryRow(ctx, `SELECT action, version, body, created_at FROM schemas WHERE action = $1 AND version = $2`, action, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.Errorf(trail.ENOTFOUND, "Schema version %d of action '%s' not found.", version, action)
	} else if err != nil {
		return nil, fmt.Errorf("find schema: %w", err)
	}
	return sc, nil
}

// HasSchemas reports whether the action has a schema.
func (s *SchemaService) HasSchemas(ctx context.Context, action string) (bool, error) {
	var ok bool
	err := s.db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM actions WHERE name = $1)`, action).Scan(&ok)
	return ok, err
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
	q := `SELECT action, version, body, created_at FROM schemas WHERE action = $1`
	if c, greater, ok := f.Bound(); ok {
		n, err := strconv.Atoi(c)
		if err != nil {
			return nil, false, trail.Errorf(trail.EINVALID, "Invalid cursor.")
		}
		op := "<"
		if greater {
			op = ">"
		}
		q += " AND version " + op + " $2"
		args = append(args, n)
	}
	dir := "DESC"
	if f.ScanAscending() {
		dir = "ASC"
	}
	q += " ORDER BY version " + dir + " LIMIT " + strconv.Itoa(f.PageLimit()+1)
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find schemas: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*trail.Schema, error) { return scanSchema(r) })
	if err != nil {
		return nil, false, fmt.Errorf("find schemas: %w", err)
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}

// FindActions lists actions with their latest schema.
func (s *SchemaService) FindActions(ctx context.Context, f trail.ListFilter) ([]*trail.Action, bool, error) {
	q, args := listQuery(`SELECT a.name, a.created_at, a.updated_at, s.action, s.version, s.body, s.created_at
		FROM actions a JOIN schemas s ON s.action = a.name AND s.version = a.latest_version WHERE true`, "a.name", nil, f)
	rows, err := s.db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find actions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*trail.Action, error) {
		var a trail.Action
		var sc trail.Schema
		var body string
		var created, updated time.Time
		if err := r.Scan(&a.Name, &created, &updated, &sc.Action, &sc.Version, &body, &sc.CreatedAt); err != nil {
			return nil, err
		}
		if _, err := decodeSchema(&sc, body); err != nil {
			return nil, err
		}
		a.Schema, a.CreatedAt, a.UpdatedAt = &sc, created.UTC(), updated.UTC()
		return &a, nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("find actions: %w", err)
	}
	out, more := trail.TrimPage(out, f)
	return out, more, nil
}
