package export

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/tlog"
)

// Sizes of the writer's pipeline.
const (
	// PageSize is how many events the writer reads a query.
	PageSize = 1000
	// MaxWorkers bounds the goroutines that convert pages.
	MaxWorkers = 4
	// MaxBytesInFlight bounds the pages read but not yet written: their
	// stored events and what they become, counted as twice the events'
	// size. The export's memory does not grow with its length, and stays
	// bounded with the largest events (a page of 1,000 events of 64 KiB is
	// taken alone).
	MaxBytesInFlight = 32 << 20
)

// Source is what the writer reads: the events, and for NDJSON the purged
// events and the tiles their proofs come from.
type Source struct {
	Events trail.EventService
	Logs   trail.LogStore
	Key    string // the logs' verifier key, to choose purge evidence that holds (optional)
}

// Progress receives the rows and bytes written so far.
type Progress func(rows, bytes int64)

// page is a batch of events on its way through the pipeline.
type page struct {
	events []*trail.Event
	weight int64 // of the budget of bytes in flight
	out    []byte
	rows   int
	err    error
	done   chan struct{}
}

// Write writes the file of ex to w: the events that match its filter
// and are below its checkpoint's size, in index order, as CSV rows (with
// a header) or NDJSON lines that carry their inclusion proofs. An NDJSON
// export without content filters also holds the events retention purged
// in its period, as {"id","index","purged":true,"leaf_hash","proof"}, so
// that an export of the whole log verifies as the whole log.
//
// One goroutine reads the events a page at a time, in index order;
// converters turn pages into bytes side by side; this goroutine writes
// them in order. The bytes in flight are bounded (MaxBytesInFlight): the
// memory does not grow with the export. It returns the rows and bytes
// written.
func Write(ctx context.Context, w io.Writer, src Source, ex *trail.Export, progress Progress) (rows, size int64, err error) {
	if ex.Checkpoint == nil {
		return 0, 0, errors.New("export: no checkpoint")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cw := &countingWriter{w: w}
	var out io.Writer = cw
	var gz *gzip.Writer
	if ex.Gzip {
		gz, _ = gzip.NewWriterLevel(cw, gzip.BestSpeed)
		out = gz
	}
	if ex.Format == trail.ExportCSV {
		if _, err := out.Write(csvHeader()); err != nil {
			return 0, 0, err
		}
	}
	var evidence []byte
	if ex.Format == trail.ExportNDJSON && !ex.Filter.HasContentFilter() {
		// Beside the purged events, what shows their purge was Trail's.
		e, err := tlog.FindPurgeEvidence(ctx, src.Events, src.Logs, src.Key, ex.OrganizationID, ex.Checkpoint.Size)
		if err != nil {
			return 0, 0, fmt.Errorf("purge evidence: %w", err)
		}
		if e != nil {
			if evidence, err = json.Marshal(e); err != nil {
				return 0, 0, err
			}
		}
	}
	workers := min(MaxWorkers, max(1, runtime.GOMAXPROCS(0)))
	budget := semaphore.NewWeighted(MaxBytesInFlight)
	pages := make(chan *page, workers)   // read, to convert
	ordered := make(chan *page, workers) // the same, in read order, to write
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(pages)
		defer close(ordered)
		err := readPages(ctx, src, ex, func(evs []*trail.Event) error {
			var n int64
			for _, ev := range evs {
				n += int64(len(ev.Raw)) + 256
			}
			p := &page{events: evs, weight: min(2*n, MaxBytesInFlight), done: make(chan struct{})}
			if err := budget.Acquire(ctx, p.weight); err != nil {
				return err
			}
			// To a converter first: a page the writer waits for is always
			// converted, or the writer sees the context end.
			for _, ch := range []chan *page{pages, ordered} {
				select {
				case ch <- p:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil {
			p := &page{err: err, done: make(chan struct{})}
			close(p.done)
			select {
			case ordered <- p:
			case <-ctx.Done():
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conv := newConverter(src, ex)
			conv.evidence = evidence
			for p := range pages {
				p.out, p.rows, p.err = conv.convert(ctx, p.events)
				p.events = nil
				close(p.done)
			}
		}()
	}
	defer wg.Wait()
	defer cancel() // before the wait: the reader and converters stop on an error
	for p := range ordered {
		select {
		case <-p.done:
		case <-ctx.Done():
			return rows, cw.n, ctx.Err()
		}
		if p.err != nil {
			return rows, cw.n, p.err
		}
		if _, err := out.Write(p.out); err != nil {
			return rows, cw.n, err
		}
		budget.Release(p.weight)
		rows += int64(p.rows)
		if progress != nil {
			progress(rows, cw.n)
		}
	}
	if err := ctx.Err(); err != nil {
		return rows, cw.n, err
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return rows, cw.n, err
		}
	}
	return rows, cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// readPages calls fn with the export's events, a page at a time, in index
// order: the events its filter matches and, for an NDJSON export without
// content filters, the purged events of its period merged in.
//
// Retention may purge events while the export reads. The purged events
// of each stretch of indexes are read after the live events of the same
// stretch, so that an event purged meanwhile is in one read or both (then
// its live contents are kept), never in neither; a purged cursor does not
// stop a Raw read.
func readPages(ctx context.Context, src Source, ex *trail.Export, fn func([]*trail.Event) error) error {
	size := ex.Checkpoint.Size
	f := ex.Filter
	f.OrganizationID, f.Ascending, f.Limit, f.Raw = ex.OrganizationID, true, PageSize, true
	withPurged := ex.Format == trail.ExportNDJSON && !f.HasContentFilter()
	out := make([]*trail.Event, 0, PageSize)
	emit := func(ev *trail.Event) error {
		out = append(out, ev)
		if len(out) < PageSize {
			return nil
		}
		err := fn(out)
		out = make([]*trail.Event, 0, PageSize)
		return err
	}
	bound := int64(-1) // every index up to it is done
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := src.Events.FindEvents(ctx, f)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		live, last := p.Events, !p.HasMore || len(p.Events) == 0
		for i, ev := range live {
			if ev.Index >= size {
				live, last = live[:i], true
				break
			}
		}
		hi := size - 1
		if !last {
			hi = live[len(live)-1].Index
			f.After = &hi
		}
		i := 0
		if withPurged {
			pf := trail.PurgedEventFilter{OrganizationID: ex.OrganizationID, After: bound, Below: hi + 1,
				RangeStart: f.RangeStart, RangeEnd: f.RangeEnd, Limit: PageSize}
			for {
				purged, err := src.Logs.FindPurgedEvents(ctx, pf)
				if err != nil {
					return fmt.Errorf("read purged events: %w", err)
				}
				for _, pe := range purged {
					for ; i < len(live) && live[i].Index < pe.Index; i++ {
						if err := emit(live[i]); err != nil {
							return err
						}
					}
					if i < len(live) && live[i].Index == pe.Index {
						continue // read before its purge: its contents stay
					}
					if err := emit(pe); err != nil {
						return err
					}
				}
				if len(purged) < pf.Limit {
					break
				}
				pf.After = purged[len(purged)-1].Index
			}
		}
		for ; i < len(live); i++ {
			if err := emit(live[i]); err != nil {
				return err
			}
		}
		bound = hi
		if last {
			break
		}
	}
	if len(out) > 0 {
		return fn(out)
	}
	return nil
}

// converter turns pages into file bytes; each converter goroutine has its
// own, with its own prover cache.
type converter struct {
	ex       *trail.Export
	csv      *csvRows
	prover   *tlog.BatchProver
	evidence []byte // the purge evidence (JSON), for the first purged line of each page
	buf      []byte
}

func newConverter(src Source, ex *trail.Export) *converter {
	c := &converter{ex: ex}
	if ex.Format == trail.ExportCSV {
		c.csv = newCSVRows()
	} else {
		c.prover = tlog.NewBatchProver(src.Logs, ex.OrganizationID, ex.Checkpoint.Size)
	}
	return c
}

func (c *converter) convert(ctx context.Context, evs []*trail.Event) ([]byte, int, error) {
	if c.csv != nil {
		rows := 0
		for _, ev := range evs {
			if ev.Purged {
				continue
			}
			if err := c.csv.appendEvent(ev.Raw); err != nil {
				return nil, 0, fmt.Errorf("event %s: %w", ev.ID, err)
			}
			rows++
		}
		out, err := c.csv.take()
		return out, rows, err
	}
	size := c.ex.Checkpoint.Size
	b := c.buf[:0]
	evidence := c.evidence
	for _, ev := range evs {
		hashes, err := c.prover.Prove(ctx, ev.Index)
		if err != nil {
			return nil, 0, fmt.Errorf("proof of index %d: %w", ev.Index, err)
		}
		if ev.Purged {
			leaf, err := c.prover.LeafHash(ctx, ev.Index)
			if err != nil {
				return nil, 0, fmt.Errorf("leaf of index %d: %w", ev.Index, err)
			}
			b = purgedLine(b, ev, leaf, size, hashes, evidence)
			evidence = nil
		} else {
			b = ndjsonLine(b, ev.Raw, size, hashes)
		}
	}
	out := make([]byte, len(b))
	copy(out, b)
	c.buf = b
	return out, len(evs), nil
}
