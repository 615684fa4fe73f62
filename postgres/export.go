package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
	"github.com/trail-audit/trail/store"
)

// ChunkSize is the size of the chunks an export file is stored in.
const ChunkSize = 1 << 20

const exportColumns = `organization_id, id, format, gzip, filter, state, error, rows, bytes, min_tree_size,
	tree_size, attempts, claim, created_at, updated_at, ready_at`

func scanExport(ctx context.Context, db *DB, row pgx.Row) (*trail.Export, error) {
	var ex trail.Export
	var filter []byte
	var treeSize *int64
	if err := row.Scan(&ex.OrganizationID, &ex.ID, &ex.Format, &ex.Gzip, &filter, &ex.State, &ex.Error, &ex.Rows, &ex.Bytes,
		&ex.MinTreeSize, &treeSize, &ex.Attempts, &ex.Claim, &ex.CreatedAt, &ex.UpdatedAt, &ex.ReadyAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(filter, &ex.Filter); err != nil {
		return nil, fmt.Errorf("export %s: filter: %w", ex.ID, err)
	}
	ex.CreatedAt, ex.UpdatedAt = ex.CreatedAt.UTC(), ex.UpdatedAt.UTC()
	if ex.ReadyAt != nil {
		t := ex.ReadyAt.UTC()
		ex.ReadyAt = &t
	}
	return store.WithCheckpoint(ctx, &ex, treeSize, NewLogStore(db).FindCheckpoint)
}

// ExportInsert stores a pending export, due at once.
func (x *executor) ExportInsert(ctx context.Context, ex *trail.Export, filter []byte) error {
	_, err := x.exec(ctx, `INSERT INTO exports (organization_id, id, format, gzip, filter, state, min_tree_size, due_at, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, ex.OrganizationID, ex.ID, ex.Format, ex.Gzip, string(filter), ex.State, ex.MinTreeSize,
		ex.CreatedAt, ex.CreatedAt, ex.UpdatedAt)
	return err
}

// ExportGet reads one export of the organization (of any when orgID is
// "").
func (x *executor) ExportGet(ctx context.Context, orgID, id string) (*trail.Export, error) {
	ex, err := scanExport(ctx, x.db, x.q().QueryRow(ctx, `SELECT `+exportColumns+` FROM exports WHERE id = $1 AND ($2 = '' OR organization_id = $2)`, id, orgID))
	return ex, noRows(err)
}

// ExportIDs returns the IDs of the organization's newest exports (IDs
// sort by creation time).
func (x *executor) ExportIDs(ctx context.Context, orgID string, limit int) ([]string, error) {
	rows, err := x.q().Query(ctx, `SELECT id FROM exports WHERE organization_id = $1 ORDER BY id DESC LIMIT $2`, orgID, limit)
	return collectRows(rows, err, func(r pgx.Row) (id string, err error) { return id, r.Scan(&id) })
}

// ClaimExport takes the oldest due pending export: it reads the due ones
// without a lock, then claims one with an UPDATE of that row that holds
// only while it is still due (claim). Of nodes that claim one at once, the
// first UPDATE moves due_at on and the others' find it no longer due.
func (s *ExportService) ClaimExport(ctx context.Context, lease time.Duration) (*trail.Export, error) {
	now := s.db.now()
	var ex *trail.Export
	err := claim(ctx, s.db.pool, `SELECT organization_id, id FROM exports WHERE state = 'pending' AND due_at <= $1 ORDER BY due_at LIMIT $2`, now,
		func(org, id string) (err error) {
			ex, err = scanExport(ctx, s.db, s.db.pool.QueryRow(ctx, `UPDATE exports SET claim = $1, attempts = attempts + 1, due_at = $2, updated_at = $3
				WHERE organization_id = $4 AND id = $5 AND state = 'pending' AND due_at <= $3
				RETURNING `+exportColumns, ident.Claim(), now.Add(lease), now, org, id))
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("claim export: %w", err)
	}
	return ex, nil
}

// claimCandidates is how many due rows a claim reads: enough that nodes
// claiming at once each find one the others did not take.
const claimCandidates = 8

// claim reads the (organization_id, id) of due rows with candidates (its
// parameters: now and a limit) and calls take on each, in order, until
// one is taken: take returns pgx.ErrNoRows (or store.ErrNotFound) for a
// row another claimer took first. No row taken is no error.
func claim(ctx context.Context, q querier, candidates string, now time.Time, take func(org, id string) error) error {
	rows, err := q.Query(ctx, candidates, now, claimCandidates)
	if err != nil {
		return err
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (k [2]string, err error) { return k, r.Scan(&k[0], &k[1]) })
	if err != nil {
		return err
	}
	for _, r := range due {
		err := take(r[0], r[1])
		if !errors.Is(err, pgx.ErrNoRows) && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return nil
}

// update runs a claim-guarded UPDATE: ECONFLICT when the claim was lost.
// The claim and identity are the last three parameters.
func (s *ExportService) update(ctx context.Context, ex *trail.Export, set string, args ...any) error {
	n := len(args)
	tag, err := s.db.pool.Exec(ctx, `UPDATE exports SET `+set+fmt.Sprintf(` WHERE organization_id = $%d AND id = $%d AND claim = $%d AND state = 'pending'`, n+1, n+2, n+3),
		append(args, ex.OrganizationID, ex.ID, ex.Claim)...)
	if err != nil {
		return fmt.Errorf("update export: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return trail.ErrExportLost(ex.ID)
	}
	return nil
}

// RenewExport extends the claim and records the progress.
func (s *ExportService) RenewExport(ctx context.Context, ex *trail.Export, lease time.Duration) error {
	now := s.db.now()
	return s.update(ctx, ex, `due_at = $1, rows = $2, bytes = $3, updated_at = $4`, now.Add(lease), ex.Rows, ex.Bytes, now)
}

// ReleaseExport gives the export back, due at retryAt.
func (s *ExportService) ReleaseExport(ctx context.Context, ex *trail.Export, retryAt time.Time) error {
	return s.update(ctx, ex, `claim = '', due_at = $1, error = $2, attempts = $3, rows = 0, bytes = 0, updated_at = $4`, retryAt, ex.Error, ex.Attempts, s.db.now())
}

// exportFile buffers a chunk and stores each full one under the claim.
type exportFile struct {
	s   *ExportService
	ctx context.Context
	ex  *trail.Export
	buf []byte
	seq int
}

func (f *exportFile) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(len(b), ChunkSize-len(f.buf))
		f.buf = append(f.buf, b[:k]...)
		b = b[k:]
		if len(f.buf) == ChunkSize {
			if err := f.flush(f.ctx); err != nil {
				return n - len(b), err
			}
		}
	}
	return n, nil
}

// flush stores the buffered chunk; ctx is the writer's, or FinishExport's
// for the last chunk.
func (f *exportFile) flush(ctx context.Context) error {
	if len(f.buf) == 0 {
		return nil
	}
	// A chunk need not be durable on its own: FinishExport's commit,
	// which waits for the WAL to be flushed up to it, makes every chunk
	// before it durable too. Not waiting for a flush per chunk lets the
	// export run on meanwhile.
	err := pgx.BeginFunc(ctx, f.s.db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO export_chunks (organization_id, export_id, claim, seq, data) VALUES ($1, $2, $3, $4, $5)`,
			f.ex.OrganizationID, f.ex.ID, f.ex.Claim, f.seq, f.buf)
		return err
	})
	if err != nil {
		return fmt.Errorf("store export chunk: %w", err)
	}
	f.seq++
	f.buf = f.buf[:0]
	return nil
}

func (f *exportFile) Abort() error {
	_, err := f.s.db.pool.Exec(context.WithoutCancel(f.ctx), `DELETE FROM export_chunks WHERE organization_id = $1 AND export_id = $2 AND claim = $3`,
		f.ex.OrganizationID, f.ex.ID, f.ex.Claim)
	return err
}

// CreateExportFile starts the claimed export's file.
func (s *ExportService) CreateExportFile(ctx context.Context, ex *trail.Export) (trail.ExportFile, error) {
	return &exportFile{s: s, ctx: ctx, ex: ex, buf: make([]byte, 0, ChunkSize)}, nil
}

// FinishExport records the outcome; a ready export's last chunk is stored
// first, and the row names the claim whose chunks are the file.
func (s *ExportService) FinishExport(ctx context.Context, ex *trail.Export, file trail.ExportFile) error {
	now := s.db.now()
	if file == nil {
		return s.update(ctx, ex, `state = $1, error = $2, claim = '', updated_at = $3`, trail.ExportError, ex.Error, now)
	}
	f := file.(*exportFile)
	if err := f.flush(ctx); err != nil {
		f.Abort()
		return err
	}
	err := s.update(ctx, ex, `state = $1, error = '', claim = '', rows = $2, bytes = $3, tree_size = $4, file = $5, ready_at = $6, updated_at = $6`,
		trail.ExportReady, ex.Rows, ex.Bytes, ex.Checkpoint.Size, ex.Claim, now)
	if err != nil {
		f.Abort()
		return err
	}
	ex.State, ex.ReadyAt = trail.ExportReady, &now
	return nil
}

// chunkReader reads a file's chunks one at a time.
type chunkReader struct {
	s              *ExportService
	ctx            context.Context
	org, id, claim string
	seq            int
	buf            []byte
	eof            bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		err := r.s.db.pool.QueryRow(r.ctx, `SELECT data FROM export_chunks WHERE organization_id = $1 AND export_id = $2 AND claim = $3 AND seq = $4`,
			r.org, r.id, r.claim, r.seq).Scan(&r.buf)
		if errors.Is(err, pgx.ErrNoRows) {
			r.eof = true
			continue
		} else if err != nil {
			return 0, fmt.Errorf("read export chunk: %w", err)
		}
		r.seq++
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *chunkReader) Close() error { return nil }

// OpenExportFile opens a ready export's file.
func (s *ExportService) OpenExportFile(ctx context.Context, orgID, id string) (io.ReadCloser, error) {
	var state string
	var claim *string
	err := s.db.pool.QueryRow(ctx, `SELECT state, file FROM exports WHERE organization_id = $1 AND id = $2`, orgID, id).Scan(&state, &claim)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, trail.ErrExportNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("open export: %w", err)
	}
	if state != trail.ExportReady || claim == nil {
		return nil, trail.ErrExportNoFile(id, state)
	}
	return &chunkReader{s: s, ctx: ctx, org: orgID, id: id, claim: *claim}, nil
}

// ExpireExports marks exports ready before before as expired and deletes
// their chunks, then the chunks no export names and no holder writes any
// more.
func (s *ExportService) ExpireExports(ctx context.Context, before time.Time) (int, error) {
	now := s.db.now()
	rows, err := s.db.pool.Query(ctx, `UPDATE exports SET state = 'expired', file = NULL, updated_at = $2
		WHERE state = 'ready' AND ready_at < $1 RETURNING organization_id, id`, before, now)
	if err != nil {
		return 0, fmt.Errorf("expire exports: %w", err)
	}
	var orgs, ids []string
	for rows.Next() {
		var org, id string
		if err := rows.Scan(&org, &id); err != nil {
			rows.Close()
			return 0, err
		}
		orgs, ids = append(orgs, org), append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("expire exports: %w", err)
	}
	n := len(ids)
	if n > 0 {
		if _, err := s.db.pool.Exec(ctx, `DELETE FROM export_chunks c USING unnest($1::text[], $2::text[]) AS x(org, id)
			WHERE c.organization_id = x.org AND c.export_id = x.id`, orgs, ids); err != nil {
			return n, fmt.Errorf("expire exports: %w", err)
		}
	}
	if _, err := s.db.pool.Exec(ctx, `DELETE FROM export_chunks c WHERE c.written_at < $1 AND NOT EXISTS (
			SELECT 1 FROM exports e WHERE e.organization_id = c.organization_id AND e.id = c.export_id
			AND (e.file = c.claim OR (e.state = 'pending' AND e.claim = c.claim)))`, now.Add(-2*trail.ExportLease)); err != nil {
		return n, fmt.Errorf("expire exports: %w", err)
	}
	return n, nil
}
