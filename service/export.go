package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// Exports implements trail.ExportService: the jobs and their own events
// here, and the driver's claims and files (its store.ExportJobs, which
// a driver stores natively: files beside SQLite, chunks in PostgreSQL).
type Exports struct {
	store.ExportJobs
	*base
}

var _ trail.ExportService = (*Exports)(nil)

// CreateExport stores a pending export and records
// audit_log_export.created; the export covers at least the log up to
// that event.
func (s *Exports) CreateExport(ctx context.Context, ex *trail.Export) error {
	now := s.d.Now().UTC()
	ex.ID = s.newID("audit_log_export_")
	ex.State, ex.CreatedAt, ex.UpdatedAt = trail.ExportPending, now, now
	ex.Filter.OrganizationID = ex.OrganizationID
	filter, err := json.Marshal(&ex.Filter)
	if err != nil {
		return err
	}
	return s.d.InTx(ctx, func(x store.Executor) error {
		if err := record(ctx, x, ex.OrganizationID, ex.AuditEvent(ctx, now)); err != nil {
			return err
		}
		next, err := x.OrganizationNextIndex(ctx, ex.OrganizationID)
		if err != nil {
			return notFound(err, trail.ErrOrganizationNotFound(ex.OrganizationID), "create export")
		}
		ex.MinTreeSize = next
		return notFound(x.ExportInsert(ctx, ex, filter), nil, "create export")
	})
}

// MaxRecentExports is the most exports FindRecentExports returns.
const MaxRecentExports = 50

// FindRecentExports returns the organization's newest exports, newest
// first, at most limit (1 to MaxRecentExports).
func (s *Exports) FindRecentExports(ctx context.Context, orgID string, limit int) ([]*trail.Export, error) {
	limit = min(max(limit, 1), MaxRecentExports)
	ids, err := s.d.ExportIDs(ctx, orgID, limit)
	if err != nil {
		return nil, fmt.Errorf("find recent exports: %w", err)
	}
	out := make([]*trail.Export, 0, len(ids))
	for _, id := range ids {
		ex, err := s.d.ExportGet(ctx, orgID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // removed since
		}
		if err != nil {
			return nil, fmt.Errorf("find recent exports: %w", err)
		}
		out = append(out, ex)
	}
	return out, nil
}

// FindExportByID returns one export of the organization (of any when
// orgID is "").
func (s *Exports) FindExportByID(ctx context.Context, orgID, id string) (*trail.Export, error) {
	ex, err := s.d.ExportGet(ctx, orgID, id)
	return ex, notFound(err, trail.ErrExportNotFound(id), "find export")
}
