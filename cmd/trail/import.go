package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/importer"
	"github.com/trail-audit/trail/jsonschema"
)

// importBatch is how many events one append holds. Fewer, larger
// commits than the API's batches of 500: measured with trail bench's
// import scenario (SQLite, 200,000 events), chunks of 500 imported 7,068
// events/s, of 2,500 10,500, of 5,000 about 12,000, of 10,000 11,750
// (the group commit takes at most 10,000 events at once).
const importBatch = 5000

// importFirstBatch is the size of a file's first chunk.
const importFirstBatch = 500

// importRun is one run of trail import: its counts, and the lines it
// could not import, reported as they come.
type importRun struct {
	m         *Main
	db        *store
	org       *trail.Organization
	validator *jsonschema.Validator
	now       time.Time
	progress  *progress

	mu   sync.Mutex // the counts, the report and the progress line
	file string

	imported, duplicates, rejected, skipped, old int
}

// importWorkers is how many chunks are validated and appended at once:
// their appends share the database's group commits, and one's
// validation overlaps another's commit.
var importWorkers = max(4, 2*runtime.NumCPU())

func (m *Main) runImport(ctx context.Context, args []string) error {
	fs := m.newFlagSet("import", "Import existing audit logs into an organization, straight into the database:\n"+
		"a WorkOS audit-log CSV export, a Trail NDJSON or CSV export, or NDJSON lines of\n"+
		"WorkOS-shaped events (bare, or as the API's {\"organization_id\",\"event\"} body).\n"+
		"Each event keeps its occurred_at, actor, targets, context and metadata and is\n"+
		"validated as the API does; a bad line is reported with its line and field, and\n"+
		"the rest goes on. Importing a file again imports nothing new, at any later time.\n\n"+
		"Usage: trail import --org ID [--format F] FILE…")
	var sf storageFlags
	sf.register(fs)
	org := fs.String("org", "", "the organization to import into (required)")
	format := fs.String("format", "", "ndjson, trail-csv or workos-csv (default: detected from each file)")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if *org == "" || fs.NArg() == 0 {
		fs.Usage()
		return errors.New("import needs --org and at least one file")
	}
	if m.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent) // as trail serve: an append allocates per event and keeps little
	}
	// Beside a serving Trail on the same SQLite file, openDB leaves the
	// WAL's restarts to it (measured: 200,000 events in 36.8 s, 29.8 s
	// so).
	db, err := sf.openDB(ctx, m.logger())
	if err != nil {
		return err
	}
	defer db.Close()
	o, err := db.Organizations.FindOrganizationByID(ctx, *org)
	if err != nil {
		return err
	}
	run := &importRun{m: m, db: db, org: o, validator: jsonschema.NewValidator(db.Schemas), now: time.Now(), progress: m.newProgress()}
	var names, formats []string
	for _, name := range fs.Args() {
		f, err := run.importFile(ctx, name, importer.Format(*format))
		if err != nil {
			run.progress.done()
			return fmt.Errorf("%s: %w", name, err)
		}
		names, formats = append(names, filepath.Base(name)), append(formats, string(f))
	}
	run.progress.done()
	md := trail.Metadata{
		"files":      strings.Join(names, ", "),
		"formats":    strings.Join(formats, ", "),
		"imported":   json.Number(strconv.Itoa(run.imported)),
		"duplicates": json.Number(strconv.Itoa(run.duplicates)),
		"rejected":   json.Number(strconv.Itoa(run.rejected)),
		"skipped":    json.Number(strconv.Itoa(run.skipped)),
	}
	if len(md["files"].(string)) > 500 {
		md["files"] = strings.ToValidUTF8(md["files"].(string)[:497], "") + "…"
	}
	if _, err := run.append(ctx, []*trail.EventInput{trail.ImportEvent(ctx, o.ID, time.Now(), md)}); err != nil {
		return fmt.Errorf("record the import in the organization's log: %w", err)
	}
	fmt.Fprintf(m.Stdout, "imported %d events into %s (%d already there, %d rejected, %d skipped); recorded as %s\n",
		run.imported, o.ID, run.duplicates, run.rejected, run.skipped, trail.ActionImportCompleted)
	if run.old > 0 {
		fmt.Fprintf(m.Stdout, "%d of them occurred more than the organization's retention (%d days) ago: they are kept for %d days from now, since a purge counts from when Trail received an event\n",
			run.old, o.RetentionDays, o.RetentionDays)
	}
	if run.rejected > 0 {
		return fmt.Errorf("%d lines were not imported (each is reported above); fix them and run the import again: what is imported is not imported twice", run.rejected)
	}
	return nil
}

// importFile imports one file and returns its format.
func (r *importRun) importFile(ctx context.Context, name string, format importer.Format) (importer.Format, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	rd, err := importer.Open(f, format)
	if err != nil {
		return "", err
	}
	r.file = filepath.Base(name)
	chunks := make(chan []*importer.Record, importWorkers)
	errs := make(chan error, importWorkers)
	var wg sync.WaitGroup
	for range importWorkers {
		wg.Go(func() {
			for chunk := range chunks {
				if err := r.importChunk(ctx, chunk); err != nil {
					errs <- err
					for range chunks { // drain: the reader stops at the error
					}
					return
				}
			}
		})
	}
	var readErr error
	// The first chunk is small, so that the first commit starts while
	// the next chunks are read (a chunk of 5,000 takes about 0.5 s to
	// read and validate on one core).
	size := importFirstBatch
	chunk := make([]*importer.Record, 0, size)
read:
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		chunk = append(chunk, rec)
		if len(chunk) == size {
			select {
			case chunks <- chunk:
			case err := <-errs:
				readErr = err
				break read
			}
			size = importBatch
			chunk = make([]*importer.Record, 0, size)
		}
	}
	if readErr == nil && len(chunk) > 0 {
		chunks <- chunk
	}
	close(chunks)
	wg.Wait()
	close(errs)
	if readErr != nil {
		return rd.Format, readErr
	}
	return rd.Format, <-errs // nil when no worker failed
}

// importChunk validates a chunk of records and appends their events.
func (r *importRun) importChunk(ctx context.Context, chunk []*importer.Record) error {
	var evs []*trail.EventInput
	var lines []int
	skipped := 0
	for _, rec := range chunk {
		rec.Decode()
		switch {
		case rec.Err != nil:
			r.reject(rec.Line, rec.Err.Error())
		case rec.Skip != "":
			skipped++
		default:
			if in, problem := r.prepare(ctx, rec); problem != "" {
				r.reject(rec.Line, problem)
			} else {
				evs, lines = append(evs, in), append(lines, rec.Line)
			}
		}
	}
	var res []trail.AppendResult
	if len(evs) > 0 {
		var err error
		if res, err = r.append(ctx, evs); err != nil {
			return err
		}
	}
	cutoff := r.now.Add(-trail.RetentionPeriod(r.org.RetentionDays))
	for i, rr := range res {
		if rr.Err != nil {
			r.reject(lines[i], problemText(rr.Err))
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.skipped += skipped
	for i, rr := range res {
		switch {
		case rr.Err != nil:
		case rr.Duplicate:
			r.duplicates++
		default:
			r.imported++
			if r.org.RetentionDays > 0 && evs[i].OccurredAt.Before(cutoff) {
				r.old++
			}
		}
	}
	r.progress.show(fmt.Sprintf("%s: %s events imported, %s already there, %s rejected", r.file,
		thousands(int64(r.imported)), thousands(int64(r.duplicates)), thousands(int64(r.rejected))), int64(r.imported+r.duplicates), "events")
	return nil
}

// prepare validates a record's event as the API does (its shape, its
// text, its schema), except that it may be older than the retention, and
// gives it its durable key.
func (r *importRun) prepare(ctx context.Context, rec *importer.Record) (*trail.EventInput, string) {
	in, _, ps, err := httpapi.DecodeEvent(rec.Event)
	if err != nil {
		return nil, problemText(err)
	}
	in.Normalize()
	if len(ps) == 0 {
		ps = in.Validate(r.now, 0)
	}
	if len(ps) == 0 {
		// A schema being compiled is EUNAVAILABLE (the API's 503): wait
		// for it, as a client honouring Retry-After would.
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
			ps, err = r.validator.ValidateEvent(ctx, in)
			if trail.ErrorCode(err) != trail.EUNAVAILABLE {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err().Error()
			case <-time.After(wait):
			}
		}
		if err != nil {
			return nil, problemText(err)
		}
	}
	if len(ps) > 0 {
		return nil, problemText(&trail.Error{Code: trail.EINVALIDEVENT, Problems: ps})
	}
	in.IdempotencyKey, in.Durable = "import/"+rec.Key, true
	return in, ""
}

func (r *importRun) reject(line int, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rejected++
	r.progress.clear()
	fmt.Fprintf(r.m.Stderr, "%s:%d: %s\n", r.file, line, why)
}

// append appends events, waiting and trying again while the database
// is overloaded (EUNAVAILABLE), as an API client would on a 503.
func (r *importRun) append(ctx context.Context, evs []*trail.EventInput) ([]trail.AppendResult, error) {
	for wait := 100 * time.Millisecond; ; wait *= 2 {
		res, err := r.db.Events.AppendEvents(ctx, r.org.ID, evs)
		if err == nil || trail.ErrorCode(err) != trail.EUNAVAILABLE || wait > 10*time.Second {
			return res, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// problemText is an error as one line: its message and the fields at
// fault ("/occurred_at: must be present").
func problemText(err error) string {
	var te *trail.Error
	if !errors.As(err, &te) {
		return err.Error()
	}
	if len(te.Problems) == 0 {
		return te.Message
	}
	var parts []string
	for _, p := range te.Problems {
		path := p.Path
		if path == "" {
			path = "(event)"
		}
		parts = append(parts, path+": "+p.Message)
	}
	return strings.Join(parts, "; ")
}
