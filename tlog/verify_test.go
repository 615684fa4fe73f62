package tlog_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/service"
	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/storetest"
	"github.com/trail-audit/trail/tlog"
)

// testLog is an organization's log on a SQLite file, integrated and
// signed, with its events as NDJSON lines.
type testLog struct {
	store  *sqlite.LogStore
	prover *tlog.Prover
	orgID  string
	vkey   string
	signer note.Signer
	lines  [][]byte
	cp     *trail.Checkpoint
}

func newTestLog(t *testing.T, orgID string, n int, seed int) *testLog {
	t.Helper()
	ctx := context.Background()
	db := sqlite.NewDB(filepath.Join(t.TempDir(), "trail.db"))
	if err := db.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := service.New(sqlite.NewStore(db), sqlite.NewExportService(db)).Organizations.CreateOrganization(ctx, &trail.Organization{ID: orgID, Name: "Verify"}); err != nil {
		t.Fatal(err)
	}
	events := sqlite.NewEventService(db)
	for i := 0; i < n; i += 500 {
		var ins []*trail.EventInput
		for j := i; j < min(n, i+500); j++ {
			in := storetest.NewEvent(j + seed)
			in.Metadata["unique"] = json.Number(fmt.Sprint(j + seed))
			ins = append(ins, in)
		}
		if _, err := events.AppendEvents(ctx, orgID, ins); err != nil {
			t.Fatal(err)
		}
	}
	l := &testLog{store: sqlite.NewLogStore(db), orgID: orgID, signer: testSigner, vkey: testVKey}
	l.prover = &tlog.Prover{Store: l.store, Key: l.vkey}
	ig := &tlog.Integrator{Store: l.store, Signer: l.signer, Origin: "trail.test", MaxLeaves: 1000}
	if _, err := ig.Integrate(ctx); err != nil {
		t.Fatal(err)
	}
	var err error
	if l.cp, err = l.store.LatestCheckpoint(ctx, orgID); err != nil {
		t.Fatal(err)
	}
	f := trail.EventFilter{OrganizationID: orgID, Ascending: true, Limit: 1000}
	for {
		page, err := events.FindEvents(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range page.Events {
			b, _ := json.Marshal(ev)
			l.lines = append(l.lines, b)
		}
		if !page.HasMore {
			break
		}
		last := page.Events[len(page.Events)-1].Index
		f.After = &last
	}
	if int64(len(l.lines)) != l.cp.Size {
		t.Fatalf("%d lines, checkpoint %d", len(l.lines), l.cp.Size)
	}
	return l
}

var testSigner, testVKey = func() (note.Signer, string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "trail.test")
	if err != nil {
		panic(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	return s, vkey
}()

func ndjson(lines [][]byte) *bytes.Reader {
	return bytes.NewReader(append(bytes.Join(lines, []byte("\n")), '\n'))
}

// withProofs adds to each line its inclusion proof, as GET
// /audit_logs/events/{id} gives it.
func (l *testLog) withProofs(t *testing.T, lines [][]byte) [][]byte {
	t.Helper()
	out := make([][]byte, len(lines))
	for i, b := range lines {
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		index, _ := m["index"].(json.Number).Int64()
		p, err := l.prover.InclusionProof(context.Background(), l.orgID, index, l.cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		m["proof"] = map[string]any{"tree_size": p.TreeSize, "hashes": p.Hashes, "checkpoint": l.cp.Note}
		out[i], _ = json.Marshal(m)
	}
	return out
}

func wantLine(t *testing.T, err error, line int) {
	t.Helper()
	var ve *tlog.VerifyError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a VerifyError naming line %d", err, line)
	}
	if line >= 0 && ve.Line != line {
		t.Fatalf("got %v, want line %d named", err, line)
	}
}

func TestVerify(t *testing.T) {
	l := newTestLog(t, "org_verify", 3000, 0)
	key, cp := l.vkey, []byte(l.cp.Note)

	t.Run("OK", func(t *testing.T) {
		res, err := tlog.Verify(ndjson(l.lines), cp, key)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Tree || res.Lines != len(l.lines) || res.TreeSize != l.cp.Size {
			t.Fatalf("%+v", res)
		}
	})

	// Every field of a line, changed by one byte.
	fields := []string{`"id":"`, `"organization_id":"org_`, `"action":"`, `"version":`, `"occurred_at":"`, `"received_at":"`,
		`"actor":{"id":"`, `"name":"Person`, `"targets":[{"id":"`, `"type":"alert_route"`, `"location":"`, `"user_agent":"`, `"unique":`, `"word":"`}
	t.Run("ChangedByte", func(t *testing.T) {
		proven := l.withProofs(t, l.lines)
		for _, field := range fields {
			for _, mode := range []string{"tree", "proofs"} {
				lines := l.lines
				if mode == "proofs" {
					lines = proven
				}
				const at = 1234
				changed := append([][]byte{}, lines...)
				i := bytes.Index(changed[at], []byte(field))
				if i < 0 {
					t.Fatalf("no %s in %s", field, changed[at])
				}
				b := append([]byte{}, changed[at]...)
				b[i+len(field)]++ // the value's first byte
				changed[at] = b
				_, err := tlog.Verify(ndjson(changed), cp, key)
				if mode == "proofs" {
					wantLine(t, err, at+1)
				} else {
					wantLine(t, err, -1)
				}
			}
		}
	})

	t.Run("DeletedLine", func(t *testing.T) {
		lines := append(append([][]byte{}, l.lines[:700]...), l.lines[701:]...)
		_, err := tlog.Verify(ndjson(lines), cp, key)
		wantLine(t, err, 701)
		_, err = tlog.Verify(ndjson(l.lines[:len(l.lines)-1]), cp, key)
		wantLine(t, err, 0) // lines missing at the end
	})

	t.Run("InsertedLine", func(t *testing.T) {
		forged := bytes.Replace(l.lines[700], []byte(`"location":"`), []byte(`"location":"x`), 1)
		lines := append(append(append([][]byte{}, l.lines[:701]...), forged), l.lines[701:]...)
		_, err := tlog.Verify(ndjson(lines), cp, key)
		wantLine(t, err, 702)
	})

	t.Run("SwappedLines", func(t *testing.T) {
		lines := append([][]byte{}, l.lines...)
		lines[900], lines[901] = lines[901], lines[900]
		_, err := tlog.Verify(ndjson(lines), cp, key)
		wantLine(t, err, 901)
		// Swapped, with their index fields swapped back: the order of
		// the leaves is wrong.
		lines[900] = bytes.Replace(lines[900], []byte(`"index":901`), []byte(`"index":900`), 1)
		lines[901] = bytes.Replace(lines[901], []byte(`"index":900`), []byte(`"index":901`), 1)
		_, err = tlog.Verify(ndjson(lines), cp, key)
		wantLine(t, err, 0)
		_, err = tlog.Verify(ndjson(l.withProofs(t, lines)), cp, key)
		if err != nil {
			// withProofs proves each line at the index it claims: the
			// proof of index 900 does not fit line 901's contents.
			wantLine(t, err, 901)
		} else {
			t.Fatal("swapped lines with proofs verified")
		}
	})

	testVerifySubsetsAndMembers(t, l, key, cp)

	testVerifyPurgedAndForged(t, l, key, cp)
}

// testVerifySubsetsAndMembers: subsets need their proofs, a purged line holds nothing else and a member is not repeated.
func testVerifySubsetsAndMembers(t *testing.T, l *testLog, key string, cp []byte) {
	t.Run("SubsetWithProofs", func(t *testing.T) {
		subset := l.withProofs(t, [][]byte{l.lines[5], l.lines[2999], l.lines[1000]})
		o := tlog.VerifyOptions{Key: key, Checkpoint: cp, Subset: true}
		res, err := o.Verify(ndjson(subset))
		if err != nil || res.Proven != 3 || res.Tree {
			t.Fatalf("%+v %v", res, err)
		}
		// A subset is not the log: without Subset it fails.
		_, err = tlog.Verify(ndjson(subset), cp, key)
		wantLine(t, err, 1)
		// With Subset, every line needs its proof.
		_, err = o.Verify(ndjson(append(subset, l.lines[7])))
		wantLine(t, err, 4)
		// A changed line of a subset is named.
		changed := append([][]byte{}, subset...)
		changed[1] = bytes.Replace(changed[1], []byte(`"location":"`), []byte(`"location":"x`), 1)
		_, err = o.Verify(ndjson(changed))
		wantLine(t, err, 2)
	})

	t.Run("LinesWithProofsMustBeComplete", func(t *testing.T) {
		proven := l.withProofs(t, l.lines)
		for name, lines := range map[string][][]byte{
			"deleted":   append(append([][]byte{}, proven[:700]...), proven[701:]...),
			"repeated":  append(append(append([][]byte{}, proven[:701]...), proven[700]), proven[701:]...),
			"truncated": proven[:2500],
		} {
			if _, err := tlog.Verify(ndjson(lines), cp, key); err == nil {
				t.Fatalf("%s line in a file of proven lines verified", name)
			}
		}
	})

	t.Run("ForgedPurgedLine", func(t *testing.T) {
		h, _ := tlog.LeafHashJSON(l.lines[10])
		hash := base64.StdEncoding.EncodeToString(h[:])
		for _, forged := range []string{
			// A real leaf hash with contents beside it, which would seem verified.
			strings.Replace(string(l.lines[10]), `{`, `{"purged":true,"leaf_hash":"`+hash+`",`, 1),
			fmt.Sprintf(`{"id":"x","index":10,"purged":true,"leaf_hash":"%s","action":"user.deleted"}`, hash),
			fmt.Sprintf(`{"id":"x","index":10,"purged":"yes","leaf_hash":"%s"}`, hash),
			fmt.Sprintf(`{"id":"x","index":10,"Purged":true,"leaf_hash":"%s"}`, hash),
		} {
			lines := append([][]byte{}, l.lines...)
			lines[10] = []byte(forged)
			_, err := tlog.Verify(ndjson(lines), cp, key)
			wantLine(t, err, 11)
		}
	})

	t.Run("DuplicateMember", func(t *testing.T) {
		lines := append([][]byte{}, l.lines...)
		lines[20] = bytes.Replace(lines[20], []byte(`{`), []byte(`{"action":"user.deleted",`), 1)
		_, err := tlog.Verify(ndjson(lines), cp, key)
		wantLine(t, err, 21)
	})
}

// testVerifyPurgedAndForged: purged lines, a bad signature and a forked history.
func testVerifyPurgedAndForged(t *testing.T, l *testLog, key string, cp []byte) {
	t.Run("Purged", func(t *testing.T) {
		lines := append([][]byte{}, l.lines...)
		h, _ := tlog.LeafHashJSON(lines[10])
		lines[10] = []byte(fmt.Sprintf(`{"id":"x","index":10,"purged":true,"leaf_hash":"%s"}`, base64.StdEncoding.EncodeToString(h[:])))
		// Its leaf hash is right, but nothing shows the purge was Trail's
		// (issue 16): a purge record and its timestamped checkpoint must
		// come with it (storetest's Purge and PurgeEvidence verify those).
		_, err := tlog.Verify(ndjson(lines), cp, key)
		wantLine(t, err, 11)
		if !strings.Contains(err.Error(), "purged without evidence") {
			t.Fatal(err)
		}
		h[0]++
		lines[10] = []byte(fmt.Sprintf(`{"id":"x","index":10,"purged":true,"leaf_hash":"%s"}`, base64.StdEncoding.EncodeToString(h[:])))
		if _, err := tlog.Verify(ndjson(lines), cp, key); err == nil {
			t.Fatal("a wrong purged leaf hash verified")
		}
	})

	t.Run("BadSignature", func(t *testing.T) {
		forged := []byte(strings.Replace(l.cp.Note, "\n3001\n", "\n3000\n", 1))
		if _, err := tlog.Verify(ndjson(l.lines[:3000]), forged, key); err == nil {
			t.Fatal("a checkpoint with a bad signature verified")
		}
		_, otherKey, _ := note.GenerateKey(rand.Reader, "trail.test")
		if _, err := tlog.Verify(ndjson(l.lines), cp, otherKey); err == nil {
			t.Fatal("a checkpoint verified with another key")
		}
		if _, err := tlog.Verify(ndjson(l.lines), cp[:len(cp)/2], key); err == nil {
			t.Fatal("a truncated checkpoint verified")
		}
	})

	t.Run("ForkedHistory", func(t *testing.T) {
		ctx := context.Background()
		// An earlier, honest checkpoint of the same log.
		early, err := l.store.FindCheckpoints(ctx, l.orgID, 0, 1)
		if err != nil || len(early) != 1 {
			t.Fatal(err)
		}
		// The same log's key signs a different history (another database
		// with the same organization and key): a fork.
		fork := newTestLog(t, l.orgID, 1500, 7)
		forkCP := []byte(fork.cp.Note)
		honest, err := l.prover.ConsistencyProof(ctx, l.orgID, early[0].Size, l.cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckConsistency([]byte(early[0].Note), cp, key, honest.Hashes); err != nil {
			t.Fatalf("honest history: %v", err)
		}
		forkProof, err := l.prover.ConsistencyProof(ctx, l.orgID, fork.cp.Size, l.cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckConsistency(forkCP, cp, key, forkProof.Hashes); err == nil {
			t.Fatal("a forked checkpoint was found consistent")
		}
		// Offline, from the lines: the fork's root is not the one of the
		// first lines.
		o := tlog.VerifyOptions{Key: key, Checkpoint: cp, Previous: forkCP}
		if _, err := o.Verify(ndjson(l.lines)); err == nil || !strings.Contains(err.Error(), "forked") {
			t.Fatalf("fork not found from the lines: %v", err)
		}
		o.Previous = []byte(early[0].Note)
		if res, err := o.Verify(ndjson(l.lines)); err != nil || !res.Consistent {
			t.Fatalf("honest previous checkpoint: %+v %v", res, err)
		}
		// A later checkpoint given as the previous one: the log shrank.
		if err := tlog.CheckConsistency(cp, []byte(early[0].Note), key, honest.Hashes); err == nil {
			t.Fatal("a shrinking log was found consistent")
		}
	})
}
