package service

import (
	"context"
	"strconv"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Schemas implements trail.SchemaService. Versions of an action are
// numbered without gaps: the action's row is locked while one is added.
type Schemas struct{ *base }

var _ trail.SchemaService = (*Schemas)(nil)

// CreateSchema stores the next version of an action's schema and records
// audit_log_schema.created in org_system's log.
func (s *Schemas) CreateSchema(ctx context.Context, sc *trail.Schema) error {
	if !trail.ValidAction(sc.Action) {
		return trail.Errorf(trail.EINVALID, "Invalid action name %q.", sc.Action)
	}
	now := s.d.Now().UTC()
	body, err := store.EncodeSchema(sc)
	if err != nil {
		return err
	}
	return s.d.InTx(ctx, func(x store.Executor) error {
		v, err := x.ActionBumpVersion(ctx, sc.Action, now)
		if err != nil {
			return notFound(err, nil, "create action")
		}
		sc.Version, sc.CreatedAt = v, now
		if err := x.SchemaInsert(ctx, sc, body); err != nil {
			return notFound(err, nil, "create schema")
		}
		return record(ctx, x, trail.SystemOrganizationID, sc.AuditEvent(ctx, now))
	})
}

// FindSchema returns one version of an action's schema.
func (s *Schemas) FindSchema(ctx context.Context, action string, version int) (*trail.Schema, error) {
	sc, err := s.d.SchemaGet(ctx, action, version)
	return sc, notFound(err, trail.ErrSchemaNotFound(action, version), "find schema")
}

// HasSchemas reports whether the action has a schema.
func (s *Schemas) HasSchemas(ctx context.Context, action string) (bool, error) {
	return s.d.ActionExists(ctx, action)
}

// FindSchemas lists the versions of an action. Keys are versions, which
// compare as numbers.
func (s *Schemas) FindSchemas(ctx context.Context, action string, f trail.ListFilter) ([]*trail.Schema, bool, error) {
	if ok, err := s.HasSchemas(ctx, action); err != nil {
		return nil, false, err
	} else if !ok {
		return nil, false, trail.ErrActionNotFound(action)
	}
	after := 0
	if c, _, ok := f.Bound(); ok {
		n, err := strconv.Atoi(c)
		if err != nil {
			return nil, false, trail.ErrInvalidCursor()
		}
		after = n
	}
	list, err := s.d.SchemaList(ctx, action, after, f)
	return page(list, notFound(err, nil, "find schemas"), f)
}

// FindActions lists actions with their latest schema.
func (s *Schemas) FindActions(ctx context.Context, f trail.ListFilter) ([]*trail.Action, bool, error) {
	list, err := s.d.ActionList(ctx, f)
	return page(list, notFound(err, nil, "find actions"), f)
}
