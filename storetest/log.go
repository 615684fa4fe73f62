package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	sumdb "golang.org/x/mod/sumdb/tlog"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/testwait"
	"github.com/trail-audit/trail/tlog"
)

// memHashes is golang.org/x/mod/sumdb/tlog's stored hashes of a tree,
// kept in memory: an implementation of RFC 6962 independent of the one
// Trail builds its trees with, to check Trail's roots and proofs against.
type memHashes []sumdb.Hash

func (m memHashes) ReadHashes(indexes []int64) ([]sumdb.Hash, error) {
	out := make([]sumdb.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = m[x]
	}
	return out, nil
}

// independentTree returns x/mod's stored hashes of a tree of leaf hashes.
func independentTree(t *testing.T, leaves [][trail.HashSize]byte) memHashes {
	t.Helper()
	var m memHashes
	for i, l := range leaves {
		hs, err := sumdb.StoredHashesForRecordHash(int64(i), sumdb.Hash(l), m)
		if err != nil {
			t.Fatal(err)
		}
		m = append(m, hs...)
	}
	return m
}

func newSigner(t testing.TB, name string) (note.Signer, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return signer, vkey
}

// newKeys makes a signing key with its timestamper.
func newKeys(t testing.TB, name string) *tlog.LogKeys {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tlog.ParseKeys(skey)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// allLeaves reads every event of the organization in index order and
// returns its leaf hash computed from the event as the API returns it,
// with a general RFC 8785 implementation.
func allLeaves(t *testing.T, s Services, orgID string) [][trail.HashSize]byte {
	t.Helper()
	var leaves [][trail.HashSize]byte
	f := trail.EventFilter{OrganizationID: orgID, Ascending: true, Limit: 100}
	for {
		page, err := s.Events.FindEvents(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			if ev.Index != int64(len(leaves)) {
				t.Fatalf("event at %d has index %d", len(leaves), ev.Index)
			}
			data, _ := json.Marshal(ev)
			h, err := tlog.LeafHashJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			leaves = append(leaves, h)
		}
		if !page.HasMore {
			return leaves
		}
		last := page.Events[len(page.Events)-1].Index
		f.After = &last
	}
}

func testTransparencyLog(t *testing.T, s Services) {
	ctx := context.Background()
	signer, vkey := newSigner(t, "trail.test")
	f := &logFixture{ctx: ctx, s: s, signer: signer, vkey: vkey,
		ig:     &tlog.Integrator{Store: s.Logs, Signer: signer, Origin: "trail.test", MaxLeaves: 300},
		prover: &tlog.Prover{Store: s.Logs, Key: vkey},
		org:    mustOrg(t, s, "Tree"),
	}
	t.Run("NewOrganization", f.testNewOrganization)
	f.appendBatches(t)
	t.Run("LeafHashes", f.testLeafHashes)
	t.Run("Checkpoints", f.testCheckpoints)
	t.Run("InclusionProofs", f.testInclusionProofs)
	t.Run("ConsistencyProofs", f.testConsistencyProofs)
	t.Run("StaleStep", f.testStaleStep)
	t.Run("RacingIntegrators", f.testRacingIntegrators)
	t.Run("FsckWhileWriting", f.testFsckWhileWriting)
	t.Run("IdleRounds", f.testIdleRounds)
}

// logFixture is an organization whose log testTransparencyLog's subtests
// share.
type logFixture struct {
	ctx    context.Context
	s      Services
	signer note.Signer
	vkey   string
	ig     *tlog.Integrator
	prover *tlog.Prover
	org    *trail.Organization
	// Set by appendBatches:
	sizes       []int64 // the size of the checkpoint after each batch
	leaves      [][trail.HashSize]byte
	independent memHashes // the tree computed apart from Trail
	size        int64
}

// appendBatches appends batches that cross tile boundaries (256) and
// integration steps (MaxLeaves 300) at different places, integrating
// after each.
func (f *logFixture) appendBatches(t *testing.T) {
	ctx, s, ig, org := f.ctx, f.s, f.ig, f.org
	var sizes []int64
	n := 0
	for _, batch := range []int{1, 254, 1, 300, 513, 7, 255, 256, 30} {
		ins := make([]*trail.EventInput, batch)
		for i := range ins {
			ins[i] = NewEvent(n)
			ins[i].Metadata["unique"] = json.Number(jsonInt(n))
			n++
		}
		mustAppend(t, s, org.ID, ins...)
		if _, err := ig.Integrate(ctx); err != nil {
			t.Fatal(err)
		}
		cp, err := s.Logs.LatestCheckpoint(ctx, org.ID)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, cp.Size)
	}
	f.sizes = sizes
	f.leaves = allLeaves(t, s, org.ID)
	f.independent = independentTree(t, f.leaves)
	f.size = int64(len(f.leaves))
}

func (f *logFixture) testNewOrganization(t *testing.T) {
	ctx, s, vkey, ig := f.ctx, f.s, f.vkey, f.ig
	empty := mustOrg(t, s, "Empty")
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	cp, err := s.Logs.LatestCheckpoint(ctx, empty.ID)
	if err != nil {
		t.Fatal(err)
	}
	// organization.created is the first event of every log.
	if cp.Size != 1 {
		t.Fatalf("checkpoint size %d, want 1", cp.Size)
	}
	opened, err := tlog.OpenCheckpoint([]byte(cp.Note), vkey)
	if err != nil {
		t.Fatal(err)
	}
	if opened.Origin != "trail.test/"+empty.ID || opened.Size != 1 || opened.Root != cp.Root {
		t.Fatalf("opened %+v, stored %+v", opened, cp)
	}
	if _, err := s.Logs.LatestCheckpoint(ctx, "org_unknown"); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("unknown organization: %v", err)
	}
}

func (f *logFixture) testLeafHashes(t *testing.T) {
	ctx, s, org, leaves, size := f.ctx, f.s, f.org, f.leaves, f.size
	got, err := s.Logs.LeafHashes(ctx, org.ID, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(leaves) {
		t.Fatalf("%d leaf hashes, want %d", len(got), len(leaves))
	}
	for i := range got {
		if got[i] != leaves[i] {
			t.Fatalf("leaf %d: stored %x, computed from the event %x", i, got[i], leaves[i])
		}
	}
}

func (f *logFixture) testCheckpoints(t *testing.T) {
	ctx, s, vkey, org, sizes, independent, size := f.ctx, f.s, f.vkey, f.org, f.sizes, f.independent, f.size
	if sizes[len(sizes)-1] != size {
		t.Fatalf("latest checkpoint %d, log %d", sizes[len(sizes)-1], size)
	}
	all, err := s.Logs.FindCheckpoints(ctx, org.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// MaxLeaves 300 splits the larger batches into several steps.
	if len(all) < len(sizes)+2 {
		t.Fatalf("%d checkpoints, want every step kept", len(all))
	}
	for _, cp := range all {
		root, err := sumdb.TreeHash(cp.Size, independent)
		if err != nil {
			t.Fatal(err)
		}
		if cp.Root != [trail.HashSize]byte(root) {
			t.Fatalf("checkpoint %d: root %x, x/mod/sumdb/tlog computes %x", cp.Size, cp.Root, root)
		}
		got, err := s.Logs.FindCheckpoint(ctx, org.ID, cp.Size)
		if err != nil || got.Note != cp.Note {
			t.Fatalf("FindCheckpoint(%d): %v", cp.Size, err)
		}
		if _, err := tlog.OpenCheckpoint([]byte(cp.Note), vkey); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Logs.FindCheckpoint(ctx, org.ID, 3); trail.ErrorCode(err) != trail.ENOTFOUND {
		t.Fatalf("size never signed: %v", err)
	}
}

func (f *logFixture) testInclusionProofs(t *testing.T) {
	ctx, prover, org, sizes, leaves, independent, size := f.ctx, f.prover, f.org, f.sizes, f.leaves, f.independent, f.size
	for _, treeSize := range append([]int64{0}, sizes...) {
		if treeSize == 0 {
			treeSize = size
		}
		root, _ := sumdb.TreeHash(treeSize, independent)
		for _, index := range []int64{0, 1, 255, 256, treeSize / 2, treeSize - 2, treeSize - 1} {
			if index < 0 || index >= treeSize {
				continue
			}
			p, err := prover.InclusionProof(ctx, org.ID, index, treeSize)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", index, treeSize, err)
			}
			rp := make(sumdb.RecordProof, len(p.Hashes))
			for i, h := range p.Hashes {
				rp[i] = sumdb.Hash(h)
			}
			if err := sumdb.CheckRecord(rp, treeSize, root, index, sumdb.Hash(leaves[index])); err != nil {
				t.Fatalf("x/mod rejects inclusion of %d in %d: %v", index, treeSize, err)
			}
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(index), uint64(treeSize), leaves[index][:], p.Hashes, root[:]); err != nil {
				t.Fatalf("merkle rejects inclusion of %d in %d: %v", index, treeSize, err)
			}
			wrong := leaves[(index+1)%treeSize]
			if index+1 < treeSize && sumdb.CheckRecord(rp, treeSize, root, index, sumdb.Hash(wrong)) == nil {
				t.Fatal("the proof also proves another leaf")
			}
		}
	}
	for _, c := range []struct{ index, size int64 }{{-1, 5}, {size, size}, {0, size + 1}} {
		if _, err := prover.InclusionProof(ctx, org.ID, c.index, c.size); trail.ErrorCode(err) != trail.EINVALID {
			t.Fatalf("InclusionProof(%d, %d): %v, want EINVALID", c.index, c.size, err)
		}
	}
	// The latest checkpoint's proof is the same proof, with that
	// checkpoint; a leaf beyond it has none yet.
	latest, err := prover.LatestCheckpoint(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, index := range []int64{0, latest.Size / 2, latest.Size - 1} {
		cp, p, err := prover.LatestInclusionProof(ctx, org.ID, index)
		want, werr := prover.InclusionProof(ctx, org.ID, index, latest.Size)
		if err != nil || werr != nil || cp == nil || cp.Size != latest.Size || cp.Note != latest.Note || p == nil || p.TreeSize != latest.Size ||
			!slices.EqualFunc(p.Hashes, want.Hashes, bytes.Equal) {
			t.Fatalf("LatestInclusionProof(%d): %v %v %+v, want the proof in %d: %v %+v", index, err, cp, p, latest.Size, werr, want)
		}
	}
	if cp, p, err := prover.LatestInclusionProof(ctx, org.ID, latest.Size); err != nil || p != nil || cp == nil || cp.Size != latest.Size {
		t.Fatalf("LatestInclusionProof(%d), beyond the checkpoint: %v %+v %v", latest.Size, cp, p, err)
	}
	if _, _, err := prover.LatestInclusionProof(ctx, org.ID, -1); trail.ErrorCode(err) != trail.EINVALID {
		t.Fatalf("LatestInclusionProof(-1): %v, want EINVALID", err)
	}
}

func (f *logFixture) testConsistencyProofs(t *testing.T) {
	ctx, prover, org, sizes, independent := f.ctx, f.prover, f.org, f.sizes, f.independent
	for i, first := range sizes {
		for _, second := range sizes[i:] {
			p, err := prover.ConsistencyProof(ctx, org.ID, first, second)
			if err != nil {
				t.Fatal(err)
			}
			r1, _ := sumdb.TreeHash(first, independent)
			r2, _ := sumdb.TreeHash(second, independent)
			tp := make(sumdb.TreeProof, len(p.Hashes))
			for i, h := range p.Hashes {
				tp[i] = sumdb.Hash(h)
			}
			if err := sumdb.CheckTree(tp, second, r2, first, r1); err != nil {
				t.Fatalf("x/mod rejects consistency %d→%d: %v", first, second, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(first), uint64(second), p.Hashes, r1[:], r2[:]); err != nil {
				t.Fatalf("merkle rejects consistency %d→%d: %v", first, second, err)
			}
		}
	}
	if _, err := prover.ConsistencyProof(ctx, org.ID, 10, 5); trail.ErrorCode(err) != trail.EINVALID {
		t.Fatalf("first > second: %v", err)
	}
}

func (f *logFixture) testStaleStep(t *testing.T) {
	ctx, s, org, size := f.ctx, f.s, f.org, f.size
	cp := &trail.Checkpoint{OrganizationID: org.ID, Size: size, Note: "x", CreatedAt: baseTime}
	step := &trail.CheckpointStep{PrevSize: 1, Checkpoint: cp}
	if err := s.Logs.AddCheckpoints(ctx, []*trail.CheckpointStep{step}); err != nil || step.Stored {
		t.Fatalf("AddCheckpoints from a stale size: %v, stored %v", err, step.Stored)
	}
	if got, _ := s.Logs.LatestCheckpoint(ctx, org.ID); got.Note == "x" {
		t.Fatal("a stale step was stored")
	}
}

func (f *logFixture) testRacingIntegrators(t *testing.T) {
	ctx, s, signer, vkey, ig, prover := f.ctx, f.s, f.signer, f.vkey, f.ig, f.prover
	other := mustOrg(t, s, "Race")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ig := &tlog.Integrator{Store: s.Logs, Signer: signer, Origin: "trail.test", MaxLeaves: 50}
			for i := 0; i < 5; i++ {
				ins := []*trail.EventInput{NewEvent(10000 + w*100 + i), NewEvent(20000 + w*100 + i)}
				if _, err := s.Events.AppendEvents(ctx, other.ID, ins); err != nil {
					errs <- err
					return
				}
				if _, err := ig.Integrate(ctx); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	leaves := allLeaves(t, s, other.ID)
	cps, err := s.Logs.FindCheckpoints(ctx, other.ID, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	m := independentTree(t, leaves)
	for _, cp := range cps {
		root, _ := sumdb.TreeHash(cp.Size, m)
		if cp.Root != [trail.HashSize]byte(root) {
			t.Fatalf("checkpoint %d has a root that is not the log's", cp.Size)
		}
	}
	last := cps[len(cps)-1]
	if last.Size != int64(len(leaves)) {
		t.Fatalf("latest checkpoint %d, log %d", last.Size, len(leaves))
	}
	// The tiles the racing integrators left prove every leaf, and
	// fsck finds the tree whole.
	for i := int64(0); i < last.Size; i++ {
		p, err := prover.InclusionProof(ctx, other.ID, i, last.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), uint64(last.Size), leaves[i][:], p.Hashes, last.Root[:]); err != nil {
			t.Fatalf("inclusion of %d after the race: %v", i, err)
		}
	}
	if _, err := tlog.Fsck(ctx, s.Logs, vkey, "trail.test", other.ID); err != nil {
		t.Fatalf("fsck after the race: %v", err)
	}
}

func (f *logFixture) testFsckWhileWriting(t *testing.T) {
	ctx, s, signer, vkey := f.ctx, f.s, f.signer, f.vkey
	// fsck reads while events are appended and integrated: what
	// arrives meanwhile is not taken for tampering.
	live := mustOrg(t, s, "Live")
	stop := make(chan struct{})
	errs := make(chan error, 2)
	go func() {
		ig := &tlog.Integrator{Store: s.Logs, Signer: signer, Origin: "trail.test", MaxLeaves: 40}
		for i := 0; ; i++ {
			select {
			case <-stop:
				errs <- nil
				return
			default:
			}
			ins := []*trail.EventInput{NewEvent(30000 + 2*i), NewEvent(30001 + 2*i)}
			ins[0].Metadata["unique"], ins[1].Metadata["unique"] = json.Number(jsonInt(i)), json.Number(jsonInt(-i))
			if _, err := s.Events.AppendEvents(ctx, live.ID, ins); err != nil {
				errs <- err
				return
			}
			if i%3 == 0 {
				if _, err := ig.Integrate(ctx); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	for i := 0; i < 10; i++ {
		if _, err := tlog.Fsck(ctx, s.Logs, vkey, "trail.test", live.ID); err != nil {
			close(stop)
			<-errs
			t.Fatalf("fsck while writing: %v", err)
		}
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// testIdleRounds: an integrator running in the background over logs it
// has integrated signs nothing more; its rounds (OnRound) say when one
// has passed, and then another for a new event.
func (f *logFixture) testIdleRounds(t *testing.T) {
	ctx, s, org := f.ctx, f.s, f.org
	before, err := s.Logs.LatestCheckpoint(ctx, org.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Another organization's events may be integrated meanwhile (the
	// subtests before raced integrators): bring every log up to date.
	if _, err := f.ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var rounds, signed int
	var roundErr error // the first round's error (a round that Stop cuts short has one)
	ig := &tlog.Integrator{Store: s.Logs, Signer: f.signer, Origin: "trail.test", Interval: 10 * time.Millisecond,
		OnRound: func(n int, err error) {
			mu.Lock()
			defer mu.Unlock()
			if roundErr == nil {
				roundErr = err
			}
			rounds, signed = rounds+1, signed+n
		}}
	count := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		if roundErr != nil {
			t.Fatalf("a round failed: %v", roundErr)
		}
		return rounds, signed
	}
	ig.Start(context.Background())
	defer ig.Stop()
	testwait.For(t, 30*time.Second, "two rounds", func() bool { r, _ := count(); return r >= 2 })
	if _, n := count(); n != 0 {
		t.Fatalf("%d checkpoints signed with nothing to integrate", n)
	}
	if cp, err := s.Logs.LatestCheckpoint(ctx, org.ID); err != nil || cp.Size != before.Size || cp.Note != before.Note {
		t.Fatalf("the latest checkpoint changed without events: %+v %v", cp, err)
	}
	mustAppend(t, s, org.ID, NewEvent(40000))
	testwait.For(t, 30*time.Second, "a round that signs the new event", func() bool { _, n := count(); return n >= 1 })
	if cp, err := s.Logs.LatestCheckpoint(ctx, org.ID); err != nil || cp.Size != before.Size+1 {
		t.Fatalf("after a new event: %+v %v", cp, err)
	}
}
