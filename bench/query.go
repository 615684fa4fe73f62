package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trail-audit/trail/httpapi"
	"github.com/trail-audit/trail/internal/demo"
)

// filter is a query of the query scenario: a name and a function that
// returns a new query string each time.
type filter struct {
	name string
	q    func() string
}

// queryFilters returns the filters of the query scenario, drawing their
// values from rng over the pre-loaded period.
func queryFilters(rng *rand.Rand, catalog []demo.CatalogEntry, base time.Time, span time.Duration) []filter {
	dateRange := func(d time.Duration, truncate bool) func() string {
		return func() string {
			s := base.Add(time.Duration(rng.Int64N(int64(span - d))))
			if truncate {
				s = s.Truncate(24 * time.Hour)
			}
			return "range_start=" + s.Format(time.RFC3339) + "&range_end=" + s.Add(d).Format(time.RFC3339)
		}
	}
	return []filter{
		{"action", func() string { return "actions=" + catalog[rng.IntN(len(catalog))].Action }},
		{"action prefix", func() string {
			a := catalog[rng.IntN(len(catalog))].Action
			return "actions=" + a[:strings.IndexByte(a, '.')] + ".*"
		}},
		{"actor", func() string { return fmt.Sprintf("actor_ids=user_%04d", rng.IntN(2000)) }},
		{"target", func() string {
			e := catalog[rng.IntN(len(catalog))]
			return fmt.Sprintf("target_ids=%s_%05d", e.TargetTypes[0], rng.IntN(50000))
		}},
		{"date range (1 day)", dateRange(24*time.Hour, false)},
		{"date range (calendar day)", dateRange(24*time.Hour, true)},
		{"date range (7 days)", dateRange(7*24*time.Hour, false)},
		{"q (one word)", func() string { return fmt.Sprintf("q=INC-%d", rng.IntN(100000)) }},
		{"q (two words)", func() string {
			return "q=" + []string{"sev1", "sev2", "sev3"}[rng.IntN(3)] + "+" + catalog[rng.IntN(len(catalog))].TargetTypes[0]
		}},
	}
}

// query measures the first page (limit 50) of the event list under each
// filter, then proofs.
func (r *runner) query(ctx context.Context, driver string) error {
	const org = queryOrg
	p, cleanup, err := r.preloadedServer(ctx, driver)
	defer cleanup()
	if err != nil {
		return err
	}
	catalog, err := demo.Catalog()
	if err != nil {
		return err
	}
	c, srv := r.c, p.srv
	rng := rand.New(rand.NewPCG(9, 9))
	filters := queryFilters(rng, catalog, p.base, p.span)
	fmt.Fprintf(r.out, "query (%s): first page (limit 50), %d events in one organization, %d queries per filter\n", p.target.label(), c.QueryEvents, c.Queries)
	// Warm-up: untimed queries of every filter, so that the figures are
	// of a server whose page cache holds the indexes, as in production.
	for _, f := range filters {
		for i := 0; i < c.Warmup; i++ {
			if _, _, err := r.do("GET", srv.url+"/audit_logs/events?organization_id="+org+"&limit=50&"+f.q(), nil); err != nil {
				return err
			}
		}
	}
	for _, f := range filters {
		var lat latencies
		var empty int
		for i := 0; i < c.Queries; i++ {
			url := srv.url + "/audit_logs/events?organization_id=" + org + "&limit=50&" + f.q()
			t0 := time.Now()
			code, b, err := r.do("GET", url, nil)
			lat.add(time.Since(t0))
			if err != nil || code != 200 {
				return fmt.Errorf("query %s: %d %.200s %v", url, code, b, err)
			}
			if bytes.HasPrefix(b, []byte(`{"object":"list","data":[]`)) {
				empty++
			}
		}
		fmt.Fprintf(r.out, "  %-26s p50 %-10s p95 %-10s p99 %-10s (%d of %d pages empty)\n", f.name, ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), empty, c.Queries)
	}
	if err := r.proofs(srv.url, org, c.Queries, rng, r.out); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "  server peak RSS %.0f MiB\n\n", srv.peakRSS())
	return nil
}

// proofs measures proofs in the tree of the organization's latest
// checkpoint: inclusion of a random event, consistency from a random
// size, and a random event with its proof.
func (r *runner) proofs(base, org string, n int, rng *rand.Rand, out io.Writer) error {
	code, b, err := r.do("GET", base+"/audit_logs/checkpoint?organization_id="+org, nil)
	if err != nil || code != 200 {
		return fmt.Errorf("checkpoint: %d %s %v", code, b, err)
	}
	lines := strings.Split(string(b), "\n")
	size, _ := strconv.ParseInt(lines[1], 10, 64)
	if size < 2 {
		return fmt.Errorf("checkpoint of %d events", size)
	}
	// Event ids at random indexes, for GET /audit_logs/events/{id}.
	var ids []string
	for len(ids) < n {
		after := rng.Int64N(size - 1)
		code, b, err := r.do("GET", fmt.Sprintf("%s/audit_logs/events?organization_id=%s&order=asc&limit=1&after=%s", base, org, httpapi.EncodeEventCursor(after)), nil)
		if err != nil || code != 200 {
			return fmt.Errorf("list: %d %.200s %v", code, b, err)
		}
		var page struct {
			Data []struct{ ID string } `json:"data"`
		}
		json.Unmarshal(b, &page)
		if len(page.Data) == 1 {
			ids = append(ids, page.Data[0].ID)
		}
	}
	for _, p := range []struct {
		name string
		path func(i int) string
	}{
		{"inclusion proof", func(int) string {
			return fmt.Sprintf("/audit_logs/proofs/inclusion?organization_id=%s&index=%d&tree_size=%d", org, rng.Int64N(size), size)
		}},
		{"consistency proof", func(int) string {
			return fmt.Sprintf("/audit_logs/proofs/consistency?organization_id=%s&first=%d&second=%d", org, 1+rng.Int64N(size-1), size)
		}},
		{"event with its proof", func(i int) string { return "/audit_logs/events/" + ids[i] }},
	} {
		var lat latencies
		for i := 0; i < n; i++ {
			t0 := time.Now()
			code, b, err := r.do("GET", base+p.path(i), nil)
			lat.add(time.Since(t0))
			if err != nil || code != 200 {
				return fmt.Errorf("%s: %d %.200s %v", p.name, code, b, err)
			}
		}
		fmt.Fprintf(out, "  %-26s p50 %-10s p95 %-10s p99 %-10s (tree of %d events)\n", p.name, ms(lat.pct(.5)), ms(lat.pct(.95)), ms(lat.pct(.99)), size)
	}
	return nil
}

// exportFormat is a file of the export scenario.
type exportFormat struct {
	name   string
	format string
	gzip   bool
	flag   string // its name in Config.ExportFormats
}

var exportFormats = []exportFormat{{"CSV", "csv", false, "csv"}, {"CSV, gzip", "csv", true, "csv.gz"}, {"NDJSON with proofs", "ndjson", false, "ndjson"}}

// export exports every pre-loaded event through the API, as CSV, gzipped
// CSV and NDJSON with proofs: the time from creating the export to its
// being ready (the server streams the database to the file), the
// download, and the server's peak RSS.
func (r *runner) export(ctx context.Context, driver string) error {
	// Files are removed a minute after they are ready: the next export's
	// file takes their place on the disk (an NDJSON file of 10 M events is
	// 14 GB).
	p, cleanup, err := r.preloadedServer(ctx, driver, "--export-ttl", "1m")
	defer cleanup()
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "export (%s): every event of one organization (%d pre-loaded)\n", p.target.label(), r.c.QueryEvents)
	for _, f := range exportFormats {
		if !slices.Contains(r.c.ExportFormats, f.flag) {
			continue
		}
		if err := r.exportOne(p, f); err != nil {
			return err
		}
	}
	fmt.Fprintf(r.out, "  server peak RSS %.0f MiB\n\n", p.srv.peakRSS())
	return nil
}

// exportOne creates an export of every pre-loaded event in format f,
// waits until it is ready, downloads it and reports the times.
func (r *runner) exportOne(p preloadedDB, f exportFormat) error {
	srv := p.srv
	body, _ := json.Marshal(map[string]any{"organization_id": queryOrg, "format": f.format, "gzip": f.gzip,
		"range_start": p.base.Add(-24 * time.Hour).Format(time.RFC3339), "range_end": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	start := time.Now()
	code, b, err := r.do("POST", srv.url+"/audit_logs/exports", body)
	if err != nil || code != 201 {
		return fmt.Errorf("create export: %d %.300s %v", code, b, err)
	}
	var ex httpapi.ExportResponse
	if err := json.Unmarshal(b, &ex); err != nil {
		return err
	}
	for ex.State == "pending" {
		time.Sleep(200 * time.Millisecond)
		code, b, err := r.do("GET", srv.url+"/audit_logs/exports/"+ex.ID, nil)
		if err != nil || code != 200 {
			return fmt.Errorf("get export: %d %.300s %v", code, b, err)
		}
		if err := json.Unmarshal(b, &ex); err != nil {
			return err
		}
	}
	took := time.Since(start)
	if ex.State != "ready" {
		return fmt.Errorf("export %s: %s %s", ex.ID, ex.State, ex.Error)
	}
	dl := time.Now()
	resp, err := r.http.Get(*ex.URL)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != ex.Bytes {
		return fmt.Errorf("download: %d of %d bytes, %v", n, ex.Bytes, err)
	}
	dlTook := time.Since(dl)
	fmt.Fprintf(r.out, "  %-20s %d rows in %s: %.0f rows/s, %.1f MB (%.0f B/row); download %.0f MB/s\n", f.name, ex.Rows, took.Round(10*time.Millisecond),
		float64(ex.Rows)/took.Seconds(), float64(ex.Bytes)/1e6, float64(ex.Bytes)/float64(max(ex.Rows, 1)), float64(n)/1e6/dlTook.Seconds())
	return nil
}

// fsck times trail fsck of the query scenario's organization, while its
// server serves (idle): the quick check and --thorough.
func (r *runner) fsck(ctx context.Context, driver string) error {
	p, cleanup, err := r.preloadedServer(ctx, driver)
	defer cleanup()
	if err != nil {
		return err
	}
	for _, thorough := range []bool{false, true} {
		args := []string{"fsck", "--data-dir", p.target.dir, "--org", queryOrg}
		if p.target.url != "" {
			args = append(args, "--database-url", p.target.url)
		}
		mode := "quick"
		if thorough {
			args, mode = append(args, "--thorough"), "thorough"
		}
		start := time.Now()
		out, err := exec.CommandContext(ctx, r.c.Executable, args...).CombinedOutput()
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("fsck: %v\n%s", err, out)
		}
		fmt.Fprintf(r.out, "fsck %-8s %-9s %d events: %s (%.0f events/s)\n  %s", driver, mode, r.c.QueryEvents, took.Round(time.Millisecond),
			float64(r.c.QueryEvents)/took.Seconds(), out)
	}
	return nil
}
