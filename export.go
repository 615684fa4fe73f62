package trail

import (
	"context"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Export formats (SPEC §8).
const (
	ExportCSV    = "csv"
	ExportNDJSON = "ndjson"
)

// Export states. An export is pending until a node has written its file,
// then ready (or error); its file is removed after the export TTL and it
// reads as expired.
const (
	ExportPending = "pending"
	ExportReady   = "ready"
	ExportError   = "error"
	ExportExpired = "expired"
)

// Defaults of export jobs.
const (
	// DefaultExportTTL is how long an export's file is kept once ready.
	DefaultExportTTL = 24 * time.Hour
	// ExportURLTTL is how long a download link is valid (WorkOS: 10 minutes).
	ExportURLTTL = 10 * time.Minute
	// ExportLease is how long a node holds an export it works on without
	// renewing its claim; when it dies, another node takes the export
	// over after this time.
	ExportLease = 30 * time.Second
	// MaxExportAttempts is how often an export is tried before it ends in
	// state error.
	MaxExportAttempts = 5
)

// ActionExportCreated is the own audit event of a new export (SPEC §12).
const ActionExportCreated = "audit_log_export.created"

// Export is an asynchronous job that writes the events of a period of one
// organization to a file (SPEC §8).
type Export struct {
	ID             string
	OrganizationID string
	Format         string // ExportCSV or ExportNDJSON
	Gzip           bool
	// Filter selects the events: its range and filters, without cursors
	// or limit.
	Filter EventFilter
	State  string
	Error  string // why, in state error
	// Rows and Bytes are what the file holds, or so far while pending.
	Rows, Bytes int64
	// MinTreeSize is the organization's log size when the export was
	// created: the export waits for a checkpoint that covers it, so that
	// every event accepted before holds.
	MinTreeSize int64
	// Checkpoint is the signed checkpoint the file was written against:
	// it holds the events below its size, and NDJSON lines carry
	// inclusion proofs to it.
	Checkpoint *Checkpoint
	Attempts   int
	// Claim identifies the node's hold on a pending export; only the
	// holder may record progress or the outcome.
	Claim     string
	CreatedAt time.Time
	UpdatedAt time.Time
	ReadyAt   *time.Time
}

// FileName is the name a download of the export gets: the organization
// (its name as ASCII letters, digits and hyphens, or its ID when the name
// has none), then the period, in UTC: whole days as dates with the last
// day included ("acme-corp_audit-log_2026-11-01_to_2026-11-30.csv"),
// other bounds to the minute ("…_2026-11-01T0800Z_to_2026-11-02T0800Z…").
// It is safe as a file name and in a Content-Disposition header.
func (e *Export) FileName(orgName string) string {
	org := slug(orgName, 48)
	if org == "" {
		org = slug(e.OrganizationID, 64)
	}
	start, end := e.Filter.RangeStart, e.Filter.RangeEnd
	from, until := "beginning", "now"
	if end == nil {
		t := e.CreatedAt
		end = &t
	}
	day := func(t time.Time) bool { return t.UTC().Equal(t.UTC().Truncate(24 * time.Hour)) }
	if (start == nil || day(*start)) && day(*end) {
		if start != nil {
			from = start.UTC().Format(time.DateOnly)
		}
		until = end.UTC().Add(-24 * time.Hour).Format(time.DateOnly)
	} else {
		if start != nil {
			from = start.UTC().Format("2006-01-02T1504Z")
		}
		until = end.UTC().Format("2006-01-02T1504Z")
	}
	name := org + "_audit-log_" + from + "_to_" + until + "." + e.Format
	if e.Gzip {
		name += ".gz"
	}
	return name
}

// slug keeps the ASCII letters and digits of s, lower-cased, with one
// hyphen for each run of anything else, at most max bytes.
func slug(s string, max int) string {
	var b []byte
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b = append(b, byte(r))
		case len(b) > 0 && b[len(b)-1] != '-':
			b = append(b, '-')
		}
		if len(b) >= max {
			break
		}
	}
	return strings.Trim(string(b), "-")
}

// ContentType is the media type of the export's file.
func (e *Export) ContentType() string {
	switch {
	case e.Gzip:
		return "application/gzip"
	case e.Format == ExportNDJSON:
		return "application/x-ndjson"
	}
	return "text/csv; charset=utf-8"
}

// ExportFile is the file of an export being written. Nothing of it is
// visible until FinishExport records it.
type ExportFile interface {
	io.Writer
	// Abort discards what was written.
	Abort() error
}

// ExportService stores export jobs and their files. Files live where every
// node can serve them: the data directory on SQLite, the database on
// PostgreSQL (SPEC §11).
type ExportService interface {
	// CreateExport stores a new pending export, giving it its ID,
	// CreatedAt and MinTreeSize, and records the audit_log_export.created
	// event in the organization's log in the same transaction.
	// ENOTFOUND for an unknown organization.
	CreateExport(ctx context.Context, ex *Export) error

	// FindExportByID returns an export of the organization (of any
	// organization when orgID is ""); ENOTFOUND when there is none
	// (another organization's export included).
	FindExportByID(ctx context.Context, orgID, id string) (*Export, error)

	// FindRecentExports returns the organization's newest exports, newest
	// first, at most limit (clamped to 1…50).
	FindRecentExports(ctx context.Context, orgID string, limit int) ([]*Export, error)

	// ClaimExport takes the oldest pending export that is due (not held,
	// or whose holder's lease ran out) for lease, sets a new Claim and
	// counts the attempt. It returns nil when none is due. Several nodes
	// may claim at once; each export goes to one of them.
	ClaimExport(ctx context.Context, lease time.Duration) (*Export, error)

	// RenewExport extends the claim by lease and records ex.Rows and
	// ex.Bytes as the progress so far. ECONFLICT when the claim was lost.
	RenewExport(ctx context.Context, ex *Export, lease time.Duration) error

	// ReleaseExport gives up the claim: the export stays pending and is
	// due again at retryAt; ex.Error says why, for the record, and
	// ex.Attempts is stored (a holder that stops lowers it: its attempt
	// does not count).
	ReleaseExport(ctx context.Context, ex *Export, retryAt time.Time) error

	// CreateExportFile returns a new, empty file for the claimed export.
	CreateExportFile(ctx context.Context, ex *Export) (ExportFile, error)

	// FinishExport records the outcome of a claimed export: state ready
	// with file (which MUST be durable when it returns) and its
	// Checkpoint, Rows and Bytes, or state error with ex.Error (file nil).
	// ECONFLICT, and the file discarded, when the claim was lost.
	FinishExport(ctx context.Context, ex *Export, file ExportFile) error

	// OpenExportFile opens the file of a ready export.
	OpenExportFile(ctx context.Context, orgID, id string) (io.ReadCloser, error)

	// ExpireExports removes the files of exports that became ready before
	// before, which then read as expired, and the files that failed
	// attempts left behind. It returns how many exports expired.
	ExpireExports(ctx context.Context, before time.Time) (int, error)
}

// PurgedEventFilter selects purged events for an export: those of an
// index range, and of a period when they occurred in it (an event purged
// before Trail kept its occurred_at counts as inside every period).
type PurgedEventFilter struct {
	OrganizationID string
	After          int64 // exclusive; -1 for the start
	Below          int64 // exclusive
	RangeStart     *time.Time
	RangeEnd       *time.Time
	Limit          int
}

// clip cuts s to at most n characters.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
