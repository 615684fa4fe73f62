package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

var importedPattern = regexp.MustCompile(`imported (\d+) events`)

// importFile measures trail import: an NDJSON file of ImportEvents
// distinct catalogue events, imported into an organization of a serving
// Trail (as an operator would), straight into its database. The figure
// to compare it with is the batch API's for the same events into one
// organization, measured first on a Trail of its own (importByAPI); the
// batch scenario's, over 16 organizations, is the other.
func (r *runner) importFile(ctx context.Context, driver string) error {
	lines, err := importLines(r.c.ImportEvents)
	if err != nil {
		return err
	}
	n := len(lines)
	if err := r.importByAPI(ctx, driver, lines); err != nil {
		return err
	}
	t, _, stop, err := r.startOrgs(ctx, driver, 1, "import", 1)
	if err != nil {
		return err
	}
	defer stop()
	file := filepath.Join(t.dir, "import.ndjson")
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for _, line := range lines {
		w.Write(line)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	args := []string{"import", "--data-dir", t.dir, "--org", "org_import00"}
	if t.url != "" {
		args = append(args, "--database-url", t.url)
	}
	args = append(args, file)
	cmd := exec.CommandContext(ctx, r.c.Executable, args...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return fmt.Errorf("trail import: %v\n%s", err, out)
	}
	m := importedPattern.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("trail import said:\n%s", out)
	}
	got, _ := strconv.Atoi(string(m[1]))
	if got != n {
		return fmt.Errorf("trail import imported %d of %d events:\n%s", got, n, out)
	}
	fmt.Fprintf(r.out, "import (%s): trail import of an NDJSON file of %d events into a serving Trail: %s, %.0f events/s\n\n",
		t.label(), n, d.Round(time.Millisecond), float64(n)/d.Seconds())
	return nil
}

// importLines returns n distinct catalogue events, encoded: each its own
// occurred_at, so that no two are one event.
func importLines(n int) ([][]byte, error) {
	base := time.Now().UTC().Add(-30 * 24 * time.Hour)
	pool, _, err := eventPool(3, 4, 5000, func(i int) time.Time { return base })
	if err != nil {
		return nil, err
	}
	lines := make([][]byte, n)
	for i := range lines {
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(pool[i%len(pool)], &ev); err != nil {
			return nil, err
		}
		ev["occurred_at"], _ = json.Marshal(base.Add(time.Duration(i) * time.Millisecond))
		if lines[i], err = json.Marshal(ev); err != nil {
			return nil, err
		}
	}
	return lines, nil
}

// importByAPI sends the import's events through the batch API into one
// organization of a fresh Trail, in batches of BatchSize from
// BatchClients clients, as a program moving them in without trail import
// would, and reports the rate.
func (r *runner) importByAPI(ctx context.Context, driver string, lines [][]byte) error {
	t, srvs, stop, err := r.startOrgs(ctx, driver, 1, "importapi", 1)
	if err != nil {
		return err
	}
	defer stop()
	size := r.c.BatchSize
	var next atomic.Int64 // the next batch to send
	errs := make(chan error, r.c.BatchClients)
	var wg sync.WaitGroup
	start := time.Now()
	for range r.c.BatchClients {
		wg.Go(func() {
			var buf bytes.Buffer
			for ctx.Err() == nil {
				from := int(next.Add(1)-1) * size
				if from >= len(lines) {
					return
				}
				buf.Reset()
				buf.WriteString(`{"organization_id":"org_importapi00","events":[`)
				for j, line := range lines[from:min(from+size, len(lines))] {
					if j > 0 {
						buf.WriteByte(',')
					}
					buf.Write(line)
				}
				buf.WriteString(`]}`)
				code, b, err := r.do("POST", srvs[0].url+"/audit_logs/events/batch", buf.Bytes())
				if err == nil && (code != 200 || bytes.Contains(b, []byte(`"error"`))) {
					err = fmt.Errorf("batch API: %d %.300s", code, b)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintf(r.out, "import by the batch API (%s): the same %d events into one organization, batches of %d, %d clients: %s, %.0f events/s\n",
		t.label(), len(lines), size, r.c.BatchClients, d.Round(time.Millisecond), float64(len(lines))/d.Seconds())
	return nil
}
