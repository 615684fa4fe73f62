package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/httpapi"
)

// listFlag is a flag that may be repeated or hold a comma list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// parseWhen reads an RFC 3339 time or a date (midnight UTC).
func parseWhen(name, v string) (string, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.Format(time.RFC3339Nano), nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("--%s %q: want an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31)", name, v)
}

func (m *Main) runExport(ctx context.Context, args []string) error {
	fs := m.newFlagSet("export", "Export a period of an organization's audit log through Trail's API (SPEC §8): the\n"+
		"export runs on the server, then its file is downloaded. Progress goes to stderr.\n\n"+
		"  TRAIL_API_KEY=sk_… trail export --org org_… --from 2026-01-01 --to 2026-02-01 -o january.csv")
	var (
		baseURL, apiKey, org, from, to, format, out, q string
		gzip                                           bool
		actions, actorIDs, actorNames, actorTypes      listFlag
		targetIDs, targets                             listFlag
	)
	fs.StringVar(&baseURL, "url", "http://127.0.0.1:8080", "Trail's base URL")
	fs.StringVar(&apiKey, "api-key", "", "an API key with the exports permission (prefer TRAIL_API_KEY: flags show in the process list)")
	fs.StringVar(&org, "org", "", "organization id (required)")
	fs.StringVar(&from, "from", "", "start of the period, inclusive: an RFC 3339 time or a date, UTC (required)")
	fs.StringVar(&to, "to", "", "end of the period, exclusive (default: 5 minutes from now, the latest occurred_at Trail accepts)")
	fs.StringVar(&format, "format", "csv", "csv or ndjson (stored events with inclusion proofs, for trail verify)")
	fs.BoolVar(&gzip, "gzip", false, "gzip the file")
	fs.StringVar(&out, "o", "", "file to write; - for stdout (default: the export's file name, in the current directory)")
	fs.Var(&actions, "actions", "actions (comma list or repeated); name.* matches a prefix")
	fs.Var(&actorIDs, "actor-ids", "actor ids")
	fs.Var(&actorNames, "actor-names", "actor names")
	fs.Var(&actorTypes, "actor-types", "actor types")
	fs.Var(&targetIDs, "target-ids", "target ids")
	fs.Var(&targets, "targets", "target types")
	fs.StringVar(&q, "q", "", "words that must all appear")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: filters are flags", fs.Arg(0))
	}
	switch {
	case org == "":
		return errors.New("--org is required")
	case from == "":
		return errors.New("--from is required: the start of the period")
	case apiKey == "":
		return errors.New("no API key: set TRAIL_API_KEY (or --api-key) to a key with the exports permission")
	}
	start, err := parseWhen("from", from)
	if err != nil {
		return err
	}
	// By default the period ends past the latest occurred_at Trail accepts,
	// so that it holds every event accepted so far.
	end := time.Now().UTC().Add(trail.MaxFutureSkew).Truncate(time.Second).Format(time.RFC3339)
	if to != "" {
		if end, err = parseWhen("to", to); err != nil {
			return err
		}
	}
	body := map[string]any{"organization_id": org, "range_start": start, "range_end": end, "format": format, "gzip": gzip}
	for name, l := range map[string]listFlag{"actions": actions, "actor_ids": actorIDs, "actor_names": actorNames,
		"actor_types": actorTypes, "target_ids": targetIDs, "targets": targets} {
		if len(l) > 0 {
			body[name] = []string(l)
		}
	}
	if q != "" {
		body["q"] = q
	}
	c := httpapi.NewClient(baseURL, apiKey)
	c.UserAgent = "trail-cli/" + version()
	ex, err := c.CreateExport(ctx, body)
	if err != nil {
		return fmt.Errorf("create export: %s", describe(err))
	}
	id := ex.ID
	fmt.Fprintf(m.Stderr, "export %s of %s, %s to %s\n", id, org, start, end)
	started := time.Now()
	if ex, err = m.awaitExport(ctx, c, ex); err != nil {
		return err
	}
	if out == "" {
		// A name from the network names a file here, never a path.
		out = filepath.Base(filepath.Clean("/" + ex.FileName))
	}
	n, err := m.downloadExport(ctx, c, ex, out)
	if err != nil {
		return err
	}
	elapsed := time.Since(started)
	fmt.Fprintf(m.Stderr, "%s rows, %s, in %s (%s rows/s)", thousands(ex.Rows), bytesString(n), elapsed.Round(time.Millisecond), thousands(int64(float64(ex.Rows)/elapsed.Seconds())))
	if out != "-" {
		fmt.Fprintf(m.Stderr, " → %s", out)
	}
	fmt.Fprintln(m.Stderr)
	if format == trail.ExportNDJSON && ex.Checkpoint != nil && out != "-" {
		cpFile := out + ".checkpoint"
		if err := os.WriteFile(cpFile, []byte(*ex.Checkpoint), 0o644); err != nil {
			return err
		}
		subset := ""
		if ex.TreeSize == nil || ex.Rows != *ex.TreeSize {
			subset = "--subset " // not the whole log: each line by its proof
		}
		fmt.Fprintf(m.Stderr, "checkpoint (tree size %d) → %s\nverify offline with the verifier key (GET /audit_logs/log_key, pinned once):\n  trail verify --key \"$KEY\" --checkpoint %s %s%s\n",
			*ex.TreeSize, cpFile, cpFile, subset, out)
	}
	return nil
}

// awaitExport shows an export's progress until it is no longer pending,
// and returns it ready, or an error.
func (m *Main) awaitExport(ctx context.Context, c *httpapi.Client, ex *httpapi.ExportResponse) (*httpapi.ExportResponse, error) {
	id := ex.ID
	var err error
	bar := m.newProgress()
	for ex.State == trail.ExportPending {
		bar.show(fmt.Sprintf("exporting: %s rows", thousands(ex.Rows)), ex.Rows, "rows")
		select {
		case <-ctx.Done():
			bar.done()
			return nil, fmt.Errorf("interrupted; the export %s goes on on the server", id)
		case <-time.After(250 * time.Millisecond):
		}
		if ex, err = c.GetExport(ctx, id); err != nil {
			bar.done()
			return nil, fmt.Errorf("export %s: %s", id, describe(err))
		}
	}
	bar.show(fmt.Sprintf("exported: %s rows", thousands(ex.Rows)), ex.Rows, "rows")
	bar.done()
	switch ex.State {
	case trail.ExportReady:
		if ex.URL == nil {
			return nil, fmt.Errorf("export %s is ready but the server gave no link", id)
		}
	case trail.ExportError:
		return nil, fmt.Errorf("export %s failed on the server: %s", ex.ID, ex.Error)
	default:
		return nil, fmt.Errorf("export %s is %s", ex.ID, ex.State)
	}
	return ex, nil
}

// downloadExport downloads a ready export's file to out (- for stdout).
// A partial file never takes the name: it is written beside it, and
// renamed when complete.
func (m *Main) downloadExport(ctx context.Context, c *httpapi.Client, ex *httpapi.ExportResponse, out string) (int64, error) {
	var w io.Writer = m.Stdout
	var tmp *os.File
	if out != "-" {
		var err error
		if tmp, err = os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.part"); err != nil {
			return 0, err
		}
		defer func() {
			if tmp != nil {
				tmp.Close()
				os.Remove(tmp.Name())
			}
		}()
		w = tmp
	}
	bar := m.newProgress()
	total := ex.Bytes
	n, err := c.DownloadExport(ctx, *ex.URL, w, func(n int64) {
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(n) / float64(total)
		}
		bar.show(fmt.Sprintf("downloading: %s %5.1f%% of %s", meter(pct), pct, bytesString(total)), n, "bytes")
	})
	bar.done()
	if err != nil {
		return 0, fmt.Errorf("download %s: %s", ex.ID, describe(err))
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return 0, err
		}
		if err := tmp.Close(); err != nil {
			return 0, err
		}
		if err := os.Rename(tmp.Name(), out); err != nil {
			return 0, err
		}
		tmp = nil
	}
	return n, nil
}

// describe is an API error as a sentence, with the fields it names.
func describe(err error) string {
	msg := trail.ErrorMessage(err)
	if msg == "" || trail.ErrorCode(err) == trail.EINTERNAL && msg == "Internal error." {
		msg = err.Error()
	}
	var fields []string
	for _, p := range trail.ErrorProblems(err) {
		fields = append(fields, strings.TrimPrefix(p.Path, "/")+": "+p.Message)
	}
	if len(fields) > 0 {
		msg += " (" + strings.Join(fields, "; ") + ")"
	}
	return msg
}

// progress draws one line that it redraws in place on a terminal; to
// anything else it writes a plain line every few seconds.
type progress struct {
	w        io.Writer
	terminal bool
	start    time.Time
	last     time.Time
	lastLine string
}

func (m *Main) newProgress() *progress {
	p := &progress{w: m.Stderr, start: time.Now()}
	if f, ok := m.Stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.terminal = m.Getenv("TERM") != "dumb"
		}
	}
	return p
}

// show draws what with the rate of n (rows or bytes) since the start.
func (p *progress) show(what string, n int64, unit string) {
	now := time.Now()
	rate := ""
	if s := now.Sub(p.start).Seconds(); s > 0.2 {
		if unit == "bytes" {
			rate = bytesString(int64(float64(n)/s)) + "/s"
		} else {
			rate = thousands(int64(float64(n)/s)) + " " + unit + "/s"
		}
	}
	line := fmt.Sprintf("%s  %s  %s", what, rate, now.Sub(p.start).Round(time.Second))
	p.lastLine = line
	if p.terminal {
		if now.Sub(p.last) >= 100*time.Millisecond {
			fmt.Fprintf(p.w, "\r\033[K%s", line)
			p.last = now
		}
		return
	}
	if now.Sub(p.last) >= 5*time.Second {
		fmt.Fprintln(p.w, line)
		p.last = now
	}
}

// clear removes the line on a terminal, before another line is written
// there; the next show draws it again.
func (p *progress) clear() {
	if p.terminal && p.lastLine != "" {
		fmt.Fprint(p.w, "\r\033[K")
		p.last = time.Time{}
	}
}

// done ends the line: on a terminal the final state stays; otherwise the
// final state is written once.
func (p *progress) done() {
	if p.lastLine == "" {
		return
	}
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s\n", p.lastLine)
		return
	}
	fmt.Fprintln(p.w, p.lastLine)
}

// meter is a bar of 24 cells for a percentage.
func meter(pct float64) string {
	const width = 24
	full := int(pct / 100 * width)
	full = max(0, min(width, full))
	return "[" + strings.Repeat("#", full) + strings.Repeat(".", width-full) + "]"
}

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// bytesString writes a size in B, KB, MB or GB (powers of 1000).
func bytesString(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
