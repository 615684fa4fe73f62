package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/store"
)

const exportColumns = `organization_id, id, format, gzip, filter, state, error, rows, bytes, min_tree_size,
	tree_size, attempts, claim, created_at, updated_at, ready_at`

func scanExport(ctx context.Context, db *DB, row interface{ Scan(...any) error }) (*trail.Export, error) {
	var ex trail.Export
	var filter, created, updated string
	var treeSize, readyAt sql.NullInt64
	if err := row.Scan(&ex.OrganizationID, &ex.ID, &ex.Format, &ex.Gzip, &filter, &ex.State, &ex.Error, &ex.Rows, &ex.Bytes,
		&ex.MinTreeSize, &treeSize, &ex.Attempts, &ex.Claim, &created, &updated, &readyAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(filter), &ex.Filter); err != nil {
		return nil, fmt.Errorf("export %s: filter: %w", ex.ID, err)
	}
	ex.CreatedAt, ex.UpdatedAt = parseTime(created), parseTime(updated)
	if readyAt.Valid {
		t := time.Unix(0, readyAt.Int64).UTC()
		ex.ReadyAt = &t
	}
	var size *int64
	if treeSize.Valid {
		size = &treeSize.Int64
	}
	return store.WithCheckpoint(ctx, &ex, size, NewLogStore(db).FindCheckpoint)
}

// ExportInsert stores a pending export, due at once.
func (x *executor) ExportInsert(ctx context.Context, ex *trail.Export, filter []byte) error {
	_, err := x.exec(ctx, `INSERT INTO exports (organization_id, id, format, gzip, filter, state, min_tree_size, due_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, ex.OrganizationID, ex.ID, ex.Format, ex.Gzip, string(filter), ex.State, ex.MinTreeSize,
		ex.CreatedAt.UnixNano(), formatTime(ex.CreatedAt), formatTime(ex.UpdatedAt))
	return err
}

// ExportGet reads one export of the organization (of any when orgID is
// "").
func (x *executor) ExportGet(ctx context.Context, orgID, id string) (*trail.Export, error) {
	ex, err := scanExport(ctx, x.db, x.r().QueryRowContext(ctx, `SELECT `+exportColumns+` FROM exports WHERE id = ? AND (? = '' OR organization_id = ?)`, id, orgID, orgID))
	return ex, noRows(err)
}

// ExportIDs returns the IDs of the organization's newest exports (IDs
// sort by creation time).
func (x *executor) ExportIDs(ctx context.Context, orgID string, limit int) ([]string, error) {
	rows, err := x.r().QueryContext(ctx, `SELECT id FROM exports WHERE organization_id = ? ORDER BY id DESC LIMIT ?`, orgID, limit)
	return collect(rows, err, func(r interface{ Scan(...any) error }) (id string, err error) { return id, r.Scan(&id) })
}

// ClaimExport takes the oldest due pending export. SQLite's single writer
// serializes claims.
func (s *ExportService) ClaimExport(ctx context.Context, lease time.Duration) (*trail.Export, error) {
	now := s.db.Now().UTC()
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var org, id string
	err = tx.QueryRowContext(ctx, `SELECT organization_id, id FROM exports WHERE state = 'pending' AND due_at <= ? ORDER BY due_at LIMIT 1`, now.UnixNano()).Scan(&org, &id)
	if err == sql.ErrNoRows {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("claim export: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE exports SET claim = ?, attempts = attempts + 1, due_at = ?, updated_at = ? WHERE organization_id = ? AND id = ?`,
		ident.Claim(), now.Add(lease).UnixNano(), formatTime(now), org, id); err != nil {
		return nil, fmt.Errorf("claim export: %w", err)
	}
	ex, err := scanExport(ctx, s.db, tx.QueryRowContext(ctx, `SELECT `+exportColumns+` FROM exports WHERE organization_id = ? AND id = ?`, org, id))
	if err != nil {
		return nil, fmt.Errorf("claim export: %w", err)
	}
	return ex, tx.Commit()
}

// update runs a claim-guarded UPDATE: ECONFLICT when the claim was lost.
func (s *ExportService) update(ctx context.Context, ex *trail.Export, set string, args ...any) error {
	res, err := s.db.writer.ExecContext(ctx, `UPDATE exports SET `+set+` WHERE organization_id = ? AND id = ? AND claim = ? AND state = 'pending'`,
		append(args, ex.OrganizationID, ex.ID, ex.Claim)...)
	if err != nil {
		return fmt.Errorf("update export: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return trail.ErrExportLost(ex.ID)
	}
	return nil
}

// RenewExport extends the claim and records the progress.
func (s *ExportService) RenewExport(ctx context.Context, ex *trail.Export, lease time.Duration) error {
	now := s.db.Now().UTC()
	return s.update(ctx, ex, `due_at = ?, rows = ?, bytes = ?, updated_at = ?`, now.Add(lease).UnixNano(), ex.Rows, ex.Bytes, formatTime(now))
}

// ReleaseExport gives the export back, due at retryAt.
func (s *ExportService) ReleaseExport(ctx context.Context, ex *trail.Export, retryAt time.Time) error {
	now := s.db.Now().UTC()
	return s.update(ctx, ex, `claim = '', due_at = ?, error = ?, attempts = ?, rows = 0, bytes = 0, updated_at = ?`, retryAt.UnixNano(), ex.Error, ex.Attempts, formatTime(now))
}

// exportFile is a file being written in the export directory, under a
// name of its own (the export's ID and the claim) until FinishExport.
type exportFile struct {
	f    *os.File
	path string
}

func (f *exportFile) Write(b []byte) (int, error) { return f.f.Write(b) }

func (f *exportFile) Abort() error {
	f.f.Close()
	return os.Remove(f.path)
}

// CreateExportFile creates the claimed export's file.
func (s *ExportService) CreateExportFile(ctx context.Context, ex *trail.Export) (trail.ExportFile, error) {
	if err := os.MkdirAll(s.db.ExportDir, 0o700); err != nil {
		return nil, fmt.Errorf("export directory: %w", err)
	}
	path := filepath.Join(s.db.ExportDir, ex.ID+"."+ex.Claim+".part")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create export file: %w", err)
	}
	return &exportFile{f: f, path: path}, nil
}

// FinishExport records the outcome. A ready export's file is synced and
// renamed to its final name before the row names it.
func (s *ExportService) FinishExport(ctx context.Context, ex *trail.Export, file trail.ExportFile) error {
	now := s.db.Now().UTC()
	if file == nil {
		return s.update(ctx, ex, `state = ?, error = ?, claim = '', updated_at = ?`, trail.ExportError, ex.Error, formatTime(now))
	}
	ef := file.(*exportFile)
	if err := ef.f.Sync(); err != nil {
		ef.Abort()
		return fmt.Errorf("export file: %w", err)
	}
	if err := ef.f.Close(); err != nil {
		os.Remove(ef.path)
		return fmt.Errorf("export file: %w", err)
	}
	name := ex.ID + "." + ex.Claim
	final := filepath.Join(s.db.ExportDir, name)
	if err := os.Rename(ef.path, final); err != nil {
		os.Remove(ef.path)
		return fmt.Errorf("export file: %w", err)
	}
	if err := syncDir(s.db.ExportDir); err != nil {
		os.Remove(final)
		return fmt.Errorf("export file: %w", err)
	}
	err := s.update(ctx, ex, `state = ?, error = '', claim = '', rows = ?, bytes = ?, tree_size = ?, file = ?, ready_at = ?, updated_at = ?`,
		trail.ExportReady, ex.Rows, ex.Bytes, ex.Checkpoint.Size, name, now.UnixNano(), formatTime(now))
	if err != nil {
		os.Remove(final)
		return err
	}
	ex.State, ex.ReadyAt = trail.ExportReady, &now
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// OpenExportFile opens a ready export's file.
func (s *ExportService) OpenExportFile(ctx context.Context, orgID, id string) (io.ReadCloser, error) {
	var state string
	var name sql.NullString
	err := s.db.reader.QueryRowContext(ctx, `SELECT state, file FROM exports WHERE organization_id = ? AND id = ?`, orgID, id).Scan(&state, &name)
	if err == sql.ErrNoRows {
		return nil, trail.ErrExportNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("open export: %w", err)
	}
	if state != trail.ExportReady || !name.Valid {
		return nil, trail.ErrExportNoFile(id, state)
	}
	f, err := os.Open(filepath.Join(s.db.ExportDir, name.String))
	if err != nil {
		return nil, fmt.Errorf("open export: %w", err)
	}
	return f, nil
}

// ExpireExports marks exports ready before before as expired and removes
// their files, then the files no export names (those of attempts that
// died) once they are older than twice the lease.
func (s *ExportService) ExpireExports(ctx context.Context, before time.Time) (int, error) {
	now := s.db.Now().UTC()
	rows, err := s.db.reader.QueryContext(ctx, `SELECT organization_id, id, file FROM exports WHERE state = 'ready' AND ready_at < ?`, before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("expire exports: %w", err)
	}
	type victim struct{ org, id, file string }
	var victims []victim
	for rows.Next() {
		var v victim
		var file sql.NullString
		if err := rows.Scan(&v.org, &v.id, &file); err != nil {
			rows.Close()
			return 0, err
		}
		v.file = file.String
		victims = append(victims, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, v := range victims {
		res, err := s.db.writer.ExecContext(ctx, `UPDATE exports SET state = 'expired', file = NULL, updated_at = ? WHERE organization_id = ? AND id = ? AND state = 'ready'`,
			formatTime(now), v.org, v.id)
		if err != nil {
			return n, fmt.Errorf("expire exports: %w", err)
		}
		if k, _ := res.RowsAffected(); k == 1 {
			n++
			if v.file != "" {
				if err := os.Remove(filepath.Join(s.db.ExportDir, v.file)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return n, fmt.Errorf("expire exports: %w", err)
				}
			}
		}
	}
	return n, s.removeOrphans(ctx, now)
}

// removeOrphans removes files of the export directory that no ready
// export names and no holder writes any more.
func (s *ExportService) removeOrphans(ctx context.Context, now time.Time) error {
	entries, err := os.ReadDir(s.db.ExportDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("export directory: %w", err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || now.Sub(info.ModTime()) < 2*trail.ExportLease {
			continue
		}
		name := e.Name()
		id, _, _ := strings.Cut(name, ".")
		var n int
		if err := s.db.reader.QueryRowContext(ctx, `SELECT count(*) FROM exports WHERE id = ? AND (file = ? OR (state = 'pending' AND ? = id || '.' || claim || '.part'))`,
			id, name, name).Scan(&n); err != nil {
			return fmt.Errorf("export directory: %w", err)
		}
		if n == 0 {
			if err := os.Remove(filepath.Join(s.db.ExportDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("export directory: %w", err)
			}
		}
	}
	return nil
}
