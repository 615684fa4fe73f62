package service

import (
	"context"
	"encoding/json"

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

// FindExportByID returns one export of the organization (of any when
// orgID is "").
func (s *Exports) FindExportByID(ctx context.Context, orgID, id string) (*trail.Export, error) {
	ex, err := s.d.ExportGet(ctx, orgID, id)
	return ex, notFound(err, trail.ErrExportNotFound(id), "find export")
}
