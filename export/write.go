package export

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/tlog"
)

// PageSize is how many events the writer reads a query.
const PageSize = 4000

// Source is what the writer reads: the events, and for NDJSON the purged
// events and the tiles their proofs come from.
type Source struct {
	Events trail.EventService
	Logs   trail.LogStore
}

// Progress receives the rows and bytes written so far.
type Progress func(rows, bytes int64)

// page is a batch of events on its way through the pipeline, numbered so
// that the writer keeps the order.
type page struct {
	seq    int
	events []*trail.Event
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
// Events are read a page at a time and converted on every core, with a
// bounded number of pages in flight: memory does not grow with the
// export. It returns the rows and bytes written.
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
	workers := max(1, runtime.GOMAXPROCS(0))
	pages := make(chan *page, workers*2)   // read, to convert
	ordered := make(chan *page, workers*2) // in read order, to write
	var wg sync.WaitGroup
	// Reader: pages in index order.
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(pages)
		defer close(ordered)
		seq := 0
		err := readPages(ctx, src, ex, func(evs []*trail.Event) error {
			p := &page{seq: seq, events: evs, done: make(chan struct{})}
			seq++
			select {
			case ordered <- p:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case pages <- p:
			case <-ctx.Done():
				return ctx.Err()
			}
			return nil
		})
		if err != nil {
			p := &page{seq: seq, err: err, done: make(chan struct{})}
			close(p.done)
			select {
			case ordered <- p:
			case <-ctx.Done():
			}
		}
	}()
	// Converters.
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conv := newConverter(src, ex)
			for p := range pages {
				p.out, p.rows, p.err = conv.convert(ctx, p.events)
				p.events = nil
				close(p.done)
			}
		}()
	}
	defer wg.Wait()
	// Writer, in order.
	for p := range ordered {
		<-p.done
		if p.err != nil {
			cancel()
			return rows, cw.n, p.err
		}
		if _, err := out.Write(p.out); err != nil {
			cancel()
			return rows, cw.n, err
		}
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
func readPages(ctx context.Context, src Source, ex *trail.Export, fn func([]*trail.Event) error) error {
	size := ex.Checkpoint.Size
	f := ex.Filter
	f.OrganizationID, f.Ascending, f.Limit, f.Raw = ex.OrganizationID, true, PageSize, true
	live := &stream{fetch: func() ([]*trail.Event, bool, error) {
		p, err := src.Events.FindEvents(ctx, f)
		if err != nil {
			return nil, false, fmt.Errorf("read events: %w", err)
		}
		evs := p.Events
		for i, ev := range evs {
			if ev.Index >= size {
				return evs[:i], false, nil
			}
		}
		if len(evs) > 0 {
			last := evs[len(evs)-1].Index
			f.After = &last
		}
		return evs, p.HasMore && len(evs) > 0, nil
	}}
	purged := &stream{done: ex.Format != trail.ExportNDJSON || f.HasContentFilter()}
	pf := trail.PurgedEventFilter{OrganizationID: ex.OrganizationID, After: -1, Below: size,
		RangeStart: f.RangeStart, RangeEnd: f.RangeEnd, Limit: PageSize}
	purged.fetch = func() ([]*trail.Event, bool, error) {
		evs, err := src.Logs.FindPurgedEvents(ctx, pf)
		if err != nil {
			return nil, false, fmt.Errorf("read purged events: %w", err)
		}
		if len(evs) > 0 {
			pf.After = evs[len(evs)-1].Index
		}
		return evs, len(evs) == pf.Limit, nil
	}
	out := make([]*trail.Event, 0, PageSize)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		a, err := live.peek()
		if err != nil {
			return err
		}
		b, err := purged.peek()
		if err != nil {
			return err
		}
		switch {
		case a == nil && b == nil:
			if len(out) > 0 {
				return fn(out)
			}
			return nil
		case b == nil || (a != nil && a.Index < b.Index):
			out = append(out, live.pop())
		default:
			out = append(out, purged.pop())
		}
		if len(out) == PageSize {
			if err := fn(out); err != nil {
				return err
			}
			out = make([]*trail.Event, 0, PageSize)
		}
	}
}

// stream is an ascending sequence of events read a page at a time.
type stream struct {
	buf   []*trail.Event
	done  bool
	fetch func() (evs []*trail.Event, more bool, err error)
}

// peek returns the next event, or nil at the end.
func (s *stream) peek() (*trail.Event, error) {
	for len(s.buf) == 0 && !s.done {
		evs, more, err := s.fetch()
		if err != nil {
			return nil, err
		}
		s.buf, s.done = evs, !more
	}
	if len(s.buf) == 0 {
		return nil, nil
	}
	return s.buf[0], nil
}

func (s *stream) pop() *trail.Event {
	ev := s.buf[0]
	s.buf = s.buf[1:]
	return ev
}

// converter turns pages into file bytes; each converter goroutine has its
// own, with its own prover cache.
type converter struct {
	ex     *trail.Export
	csv    *csvRows
	prover *tlog.BatchProver
	buf    []byte
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
			b = purgedLine(b, ev, leaf, size, hashes)
		} else {
			b = ndjsonLine(b, ev.Raw, size, hashes)
		}
	}
	out := make([]byte, len(b))
	copy(out, b)
	c.buf = b
	return out, len(evs), nil
}
