package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/export"
	"github.com/trail-audit/trail/internal/demo"
	"github.com/trail-audit/trail/tlog"
)

// ProofBenchLeaves is the tree size of BenchProofs, unless
// TRAIL_BENCH_PROOF_LEAVES says otherwise.
const ProofBenchLeaves = 10_000_000

// syntheticLeaves is a LogStore whose log of one organization holds n
// leaves it makes up, and whose trees, tiles and checkpoints are the real
// store's: it builds a tree of n leaves without n event rows.
type syntheticLeaves struct {
	trail.LogStore
	orgID string
	n     int64
}

func (s *syntheticLeaves) PendingLogs(ctx context.Context, after string, limit int) ([]trail.LogHead, error) {
	h, err := s.LogHead(ctx, s.orgID)
	if err != nil || after >= s.orgID || (h.HasCheckpoint && h.TreeSize >= s.n) {
		return nil, err
	}
	h.LogSize = s.n
	return []trail.LogHead{*h}, nil
}

func (s *syntheticLeaves) LeafHashes(_ context.Context, _ string, from, to int64) ([][trail.HashSize]byte, error) {
	out := make([][trail.HashSize]byte, 0, to-from)
	var b [8]byte
	for i := from; i < to; i++ {
		binary.BigEndian.PutUint64(b[:], uint64(i))
		out = append(out, sha256.Sum256(b[:]))
	}
	return out, nil
}

// BenchProofs builds a tree of ProofBenchLeaves leaves in the store (the
// integrator writing real tiles and checkpoints), then measures inclusion
// and consistency proofs at that size through tlog.Prover, as the API
// serves them. setHead makes the organization's log that long, so that
// the store accepts a tree of that size.
func BenchProofs(b *testing.B, logs trail.LogStore, orgs trail.OrganizationService, setHead func(orgID string, n int64)) {
	ctx := context.Background()
	n := int64(ProofBenchLeaves)
	if v, err := strconv.ParseInt(os.Getenv("TRAIL_BENCH_PROOF_LEAVES"), 10, 64); err == nil && v > 1 {
		n = v
	}
	org := &trail.Organization{Name: "proofs"}
	if err := orgs.CreateOrganization(ctx, org); err != nil {
		b.Fatal(err)
	}
	setHead(org.ID, n)
	signer, vkey := newSigner(b, "trail.bench")
	store := &syntheticLeaves{LogStore: logs, orgID: org.ID, n: n}
	start := time.Now()
	if _, err := (&tlog.Integrator{Store: store, Signer: signer, Origin: "trail.bench"}).Integrate(ctx); err != nil {
		b.Fatal(err)
	}
	cp, err := logs.LatestCheckpoint(ctx, org.ID)
	if err != nil || cp.Size != n {
		b.Fatalf("tree of %d leaves: %+v %v", n, cp, err)
	}
	b.Logf("built a tree of %d leaves in %s", n, time.Since(start).Round(time.Millisecond))
	prover := &tlog.Prover{Store: logs, Key: vkey}
	rng := rand.New(rand.NewPCG(1, 2))
	b.Run("Inclusion", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := prover.InclusionProof(ctx, org.ID, rng.Int64N(n), n); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Consistency", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := prover.ConsistencyProof(ctx, org.ID, 1+rng.Int64N(n-1), n); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// ExportBenchEvents is how many demo events BenchExport writes (override
// with TRAIL_BENCH_EXPORT_EVENTS).
const ExportBenchEvents = 200_000

// BenchExport measures export.Write alone, to io.Discard: CSV, gzipped
// CSV and NDJSON with proofs of the demo's events.
func BenchExport(b *testing.B, s Services) {
	ctx := context.Background()
	n := ExportBenchEvents
	if v, err := strconv.Atoi(os.Getenv("TRAIL_BENCH_EXPORT_EVENTS")); err == nil && v > 0 {
		n = v
	}
	catalog, err := demo.Catalog()
	if err != nil {
		b.Fatal(err)
	}
	org := &trail.Organization{Name: "export"}
	if err := s.Organizations.CreateOrganization(ctx, org); err != nil {
		b.Fatal(err)
	}
	evs := demo.Events(catalog, n, time.Now())
	for len(evs) > 0 {
		k := min(len(evs), 5000)
		if _, err := s.Events.AppendEvents(ctx, org.ID, evs[:k]); err != nil {
			b.Fatal(err)
		}
		evs = evs[k:]
	}
	signer, _ := newSigner(b, "trail.bench")
	if _, err := (&tlog.Integrator{Store: s.Logs, Signer: signer, Origin: "trail.bench"}).Integrate(ctx); err != nil {
		b.Fatal(err)
	}
	cp, err := s.Logs.LatestCheckpoint(ctx, org.ID)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		format string
		gzip   bool
	}{{"CSV", trail.ExportCSV, false}, {"CSVGzip", trail.ExportCSV, true}, {"NDJSON", trail.ExportNDJSON, false}} {
		b.Run(c.name, func(b *testing.B) {
			ex := &trail.Export{OrganizationID: org.ID, Format: c.format, Gzip: c.gzip, Checkpoint: cp}
			var rows, size int64
			for b.Loop() {
				if rows, size, err = export.Write(ctx, io.Discard, export.Source{Events: s.Events, Logs: s.Logs}, ex, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/float64(rows), "bytes/row")
		})
	}
}

// TestBatchProver builds a tree of 70,037 made-up leaves (three tile
// levels, a partial tile on each) and checks tlog.BatchProver's proofs and
// leaf hashes, asked in index order as an export asks, against
// tlog.Prover's and the leaves. setHead sets the organization's log size.
func TestBatchProver(t *testing.T, logs trail.LogStore, orgs trail.OrganizationService, setHead func(orgID string, n int64)) {
	ctx := context.Background()
	const n = 70_037
	org := &trail.Organization{Name: "batch prover"}
	if err := orgs.CreateOrganization(ctx, org); err != nil {
		t.Fatal(err)
	}
	setHead(org.ID, n)
	signer, vkey := newSigner(t, "trail.test")
	store := &syntheticLeaves{LogStore: logs, orgID: org.ID, n: n}
	if _, err := (&tlog.Integrator{Store: store, Signer: signer, Origin: "trail.test"}).Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	leaves, _ := store.LeafHashes(ctx, org.ID, 0, n)
	prover := &tlog.Prover{Store: logs, Key: vkey}
	for _, size := range []int64{n, 65_536, 65_537, 300} {
		bp := tlog.NewBatchProver(logs, org.ID, size)
		checked := 0
		for i := int64(0); i < size; i++ {
			if !(i < 600 || i%97 == 0 || i >= size-600 || i%256 == 255) {
				continue
			}
			got, err := bp.Prove(ctx, i)
			if err != nil {
				t.Fatalf("size %d, index %d: %v", size, i, err)
			}
			want, err := prover.InclusionProof(ctx, org.ID, i, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want.Hashes) {
				t.Fatalf("size %d, index %d: %d hashes, want %d", size, i, len(got), len(want.Hashes))
			}
			for k := range got {
				if string(got[k]) != string(want.Hashes[k]) {
					t.Fatalf("size %d, index %d: hash %d differs", size, i, k)
				}
			}
			leaf, err := bp.LeafHash(ctx, i)
			if err != nil || string(leaf) != string(leaves[i][:]) {
				t.Fatalf("size %d, leaf %d: %x %v", size, i, leaf, err)
			}
			checked++
		}
		if _, err := bp.Prove(ctx, size); err == nil {
			t.Fatalf("a proof of index %d in a tree of %d", size, size)
		}
		t.Logf("tree of %d: %d proofs agree", size, checked)
	}
}
