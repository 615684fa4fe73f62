// Package service implements Trail's services (the trail.*Service
// interfaces) once, above every database driver: the rules, limits,
// error messages and Trail's own audit events live here, and each
// operation runs on a store.Driver, whose methods are only SQL. The
// HTTP API, the web UI and the command line call the same services.
//
//	db := sqlite.NewDB(path) // or postgres.NewDB(url)
//	if err := db.Open(ctx); err != nil { … }
//	svc := service.New(sqlite.NewStore(db), sqlite.NewExportService(db))
//	err := svc.Organizations.CreateOrganization(ctx, &trail.Organization{Name: "Acme"})
package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/store"
)

// Services are the services on one driver.
type Services struct {
	Organizations *Organizations
	APIKeys       *APIKeys
	Schemas       *Schemas
	Portal        *Portal
	Idempotency   *Idempotency
	Streams       *Streams
	Exports       *Exports
}

// New returns the services on d; jobs are the driver's export claims
// and files (the part of exports each driver does natively).
func New(d store.Driver, jobs store.ExportJobs) *Services {
	b := &base{d: d, ids: ident.NewGenerator()}
	return &Services{
		Organizations: &Organizations{b}, APIKeys: &APIKeys{b}, Schemas: &Schemas{b}, Portal: &Portal{b},
		Idempotency: &Idempotency{b}, Streams: &Streams{b}, Exports: &Exports{ExportJobs: jobs, base: b},
	}
}

// base is what every service holds: the driver and the generator of
// resource ids.
type base struct {
	d   store.Driver
	ids *ident.Generator
}

// newID returns a new resource id with prefix.
func (b *base) newID(prefix string) string { return prefix + b.ids.New(b.d.Now()) }

// record appends one of Trail's own audit events in the transaction x:
// the one way every service records what it changed.
func record(ctx context.Context, x store.Executor, orgID string, ev *trail.EventInput) error {
	if err := x.AppendOwn(ctx, orgID, ev); err != nil {
		return fmt.Errorf("record %s: %w", ev.Action, err)
	}
	return nil
}

// notFound turns a driver's ErrNotFound into msg (when there is one),
// and wraps other errors with what was being done. It never returns a nil
// *trail.Error as a non-nil error.
func notFound(err error, msg *trail.Error, doing string) error {
	switch {
	case err == nil:
		return nil
	case msg != nil && errors.Is(err, store.ErrNotFound):
		return msg
	case trail.ErrorCode(err) != trail.EINTERNAL:
		return err
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// page trims a driver's page plus one row.
func page[T any](items []T, err error, f trail.ListFilter) ([]T, bool, error) {
	if err != nil {
		return nil, false, err
	}
	items, more := trail.TrimPage(items, f)
	return items, more, nil
}
