package bench

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/demo"
	"github.com/trail-audit/trail/postgres"
)

// queryOrg holds the pre-loaded events of the query, export, ui and fsck
// scenarios.
const queryOrg = "org_bench_query"

// querySchema is the PostgreSQL schema of the pre-loaded events, kept for
// the next run.
const querySchema = "trail_bench_query"

// preloadedDB is the server of a pre-loaded scenario and its database.
type preloadedDB struct {
	srv    *server
	target target
	base   time.Time     // the time of the first pre-loaded event
	span   time.Duration // the time the pre-loaded events cover
}

// preloadedServer starts a server on the database of the query scenarios,
// pre-loaded with QueryEvents events spread over 90 days (kept in DataDir
// or, on PostgreSQL, in schema trail_bench_query for the next run).
// cleanup stops the server and removes what is not kept; it is never nil.
func (r *runner) preloadedServer(ctx context.Context, driver string, serverArgs ...string) (p preloadedDB, cleanup func(), err error) {
	cleanup = func() {}
	dir := r.c.DataDir
	if dir == "" && driver == "postgres" {
		// The schema is kept for the next run, and with it the
		// checkpoints signed with this directory's key: keep the key,
		// one directory for each server and database.
		sum := sha256.Sum256([]byte(r.c.DatabaseURL))
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("trail_bench_query-%x", sum[:6]))
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "trail-bench")
		if err != nil {
			return p, cleanup, err
		}
		cleanup = func() { os.RemoveAll(d) }
		dir = d
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return p, cleanup, err
	}
	p.span = 90 * 24 * time.Hour
	p.base = time.Now().UTC().Add(-p.span).Truncate(time.Hour)
	p.target = target{driver: driver, nodes: 1, dir: dir}
	if driver == "postgres" {
		if p.target.url, err = postgres.CreateSchema(ctx, r.c.DatabaseURL, querySchema); err != nil {
			return p, cleanup, err
		}
	}
	if err := r.preload(ctx, dir, p.target.url, queryOrg, r.c.QueryEvents, p.base, p.span); err != nil {
		return p, cleanup, err
	}
	if driver == "postgres" {
		// A database in steady state has its statistics and visibility
		// map up to date (autovacuum's work); a freshly loaded one not yet.
		if err := postgres.Analyze(ctx, p.target.url); err != nil {
			return p, cleanup, err
		}
	}
	if p.srv, err = r.startServer(ctx, dir, p.target.url, serverArgs...); err != nil {
		return p, cleanup, err
	}
	rm := cleanup
	cleanup = func() { p.srv.stop(); rm() }
	return p, cleanup, nil
}

// preload appends events directly through the driver until the
// organization holds n events, then signs them into checkpoints.
func (r *runner) preload(ctx context.Context, dataDir, dbURL, org string, n int, base time.Time, span time.Duration) error {
	db, err := r.c.Open(ctx, dataDir, dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Organizations.FindOrganizationByID(ctx, org); trail.ErrorCode(err) == trail.ENOTFOUND {
		if err := db.Organizations.CreateOrganization(ctx, &trail.Organization{ID: org, Name: "bench"}); err != nil {
			return err
		}
	}
	page, err := db.Events.FindEvents(ctx, trail.EventFilter{OrganizationID: org, Limit: 1})
	if err != nil {
		return err
	}
	have := int(page.Events[0].Index) // index 0 is organization.created
	if have >= n {
		fmt.Fprintf(r.out, "query: reusing %d pre-loaded events in %s\n", have, db.Name)
		return r.integrateAll(ctx, db)
	}
	catalog, err := demo.Catalog()
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(have), 3))
	step := span / time.Duration(n)
	start := time.Now()
	const chunk = 10000
	for i := have; i < n; i += chunk {
		evs := make([]*trail.EventInput, min(chunk, n-i))
		for j := range evs {
			evs[j] = event(rng, catalog, base.Add(step*time.Duration(i+j)))
		}
		if _, err := db.Events.AppendEvents(ctx, org, evs); err != nil {
			return err
		}
		if (i/chunk)%50 == 0 {
			fmt.Fprintf(r.log, "\rpre-loading: %d of %d events (%.0f/s)", i+len(evs), n, float64(i+len(evs)-have)/time.Since(start).Seconds())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	fmt.Fprintf(r.log, "\rpre-loaded %d events in %s (%.0f events/s through the driver)\n", n-have, time.Since(start).Round(time.Second), float64(n-have)/time.Since(start).Seconds())
	return r.integrateAll(ctx, db)
}

// integrateAll brings every tree up to its log before the timed queries,
// as the server's integrator would, and says how long it took.
func (r *runner) integrateAll(ctx context.Context, db *DB) error {
	start := time.Now()
	n, leaves, err := db.Integrate(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(r.out, "integrated %d events into their trees in %s (%d checkpoints, %.0f events/s)\n", leaves, time.Since(start).Round(time.Millisecond), n, float64(leaves)/time.Since(start).Seconds())
	}
	return nil
}
