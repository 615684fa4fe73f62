package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

var importedPattern = regexp.MustCompile(`imported (\d+) events`)

// importFile measures trail import: an NDJSON file of ImportEvents
// distinct catalogue events, imported into an organization of a serving
// Trail (as an operator would), straight into its database. The batch
// scenario of the same run is the API's figure to compare with.
func (r *runner) importFile(ctx context.Context, driver string) error {
	t, _, stop, err := r.startOrgs(ctx, driver, 1, "import", 1)
	if err != nil {
		return err
	}
	defer stop()
	n := r.c.ImportEvents
	base := time.Now().UTC().Add(-30 * 24 * time.Hour)
	pool, _, err := eventPool(3, 4, 5000, func(i int) time.Time { return base })
	if err != nil {
		return err
	}
	file := filepath.Join(t.dir, "import.ndjson")
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < n; i++ {
		// Each line its own occurred_at, so that no two are one event.
		var ev map[string]json.RawMessage
		if err := json.Unmarshal(pool[i%len(pool)], &ev); err != nil {
			f.Close()
			return err
		}
		ev["occurred_at"], _ = json.Marshal(base.Add(time.Duration(i) * time.Millisecond))
		b, _ := json.Marshal(ev)
		w.Write(b)
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
