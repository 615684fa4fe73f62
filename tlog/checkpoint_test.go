package tlog_test

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/trail-audit/trail/tlog"
)

// TestLoadOrCreateKey: nodes that start at the same moment end up with the
// same key, written whole, with mode 0600; a later start reads it.
func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "log-signing.key")
	keys := make([]string, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, vkey, err := tlog.LoadOrCreateKey(path, "audit.example.com")
			if err != nil {
				t.Error(err)
			}
			keys[i] = vkey
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if k != keys[0] || k == "" {
			t.Fatalf("starts disagree on the key: %q", keys)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	signer, vkey, err := tlog.LoadOrCreateKey(path, "another.name")
	if err != nil || vkey != keys[0] || signer.Name() != "audit.example.com" {
		t.Fatalf("reading the key back: %v %q %q", err, vkey, keys[0])
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left beside the key: %v", entries)
	}
	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlog.LoadOrCreateKey(path, "x"); err == nil {
		t.Fatal("a file that holds no key was accepted")
	}
}

// TestCheckpointTime: the timestamp beside a checkpoint is a C2SP
// cosignature/v1 that transparency-dev/formats verifies with the log's own
// verifier key; the note still opens as a plain checkpoint; a note without
// it, or with its time changed, gives no time.
func TestCheckpointTime(t *testing.T) {
	skey, vkey, err := note.GenerateKey(rand.Reader, "audit.example.com")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tlog.ParseKeys(skey)
	if err != nil || keys.VerifierKey != vkey {
		t.Fatalf("keys %+v %v", keys, err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 900_000_000, time.UTC)
	keys.Timestamper.Now = func() time.Time { return at }
	var root [32]byte
	msg, err := tlog.Sign(keys.Signer, keys.Timestamper, "audit.example.com", "org_a", 7, root)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tlog.OpenCheckpoint([]byte(msg), vkey); err != nil || c.Size != 7 {
		t.Fatalf("open: %+v %v", c, err)
	}
	if strings.Count(msg, "— audit.example.com ") != 2 || !strings.HasPrefix(msg, "audit.example.com/org_a\n7\n") {
		t.Fatalf("note:\n%s", msg)
	}
	got, err := tlog.CheckpointTime([]byte(msg), vkey)
	if err != nil || !got.Equal(at.Truncate(time.Second)) {
		t.Fatalf("time %v %v", got, err)
	}
	// Checked by the library, independently of Trail's signer.
	cv, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(cv)
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open([]byte(msg), note.VerifierList(v))
	if err != nil || len(n.Sigs) != 1 {
		t.Fatalf("formats' verifier: %v", err)
	}
	if ts, err := fnote.CoSigV1Timestamp(n.Sigs[0]); err != nil || !ts.Equal(at.Truncate(time.Second)) {
		t.Fatalf("formats' time %v %v", ts, err)
	}
	plain, err := tlog.Sign(keys.Signer, nil, "audit.example.com", "org_a", 7, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tlog.CheckpointTime([]byte(plain), vkey); !errors.Is(err, tlog.ErrNoTimestamp) {
		t.Fatalf("a checkpoint without a timestamp: %v", err)
	}
	// The timestamp line of another note (another time) does not verify.
	keys.Timestamper.Now = func() time.Time { return at.Add(-time.Hour) }
	earlier, _ := tlog.Sign(keys.Signer, keys.Timestamper, "audit.example.com", "org_a", 7, root)
	forged := msg[:strings.LastIndex(msg, "— ")] + earlier[strings.LastIndex(earlier, "— "):]
	if forged == msg {
		t.Fatal("no forgery")
	}
	if got, err := tlog.CheckpointTime([]byte(forged), vkey); err != nil || !got.Equal(at.Add(-time.Hour).Truncate(time.Second)) {
		// The whole line was replaced: it is a valid timestamp of the same
		// body. A changed time inside the line is not.
		t.Fatalf("a swapped line: %v %v", got, err)
	}
	i := strings.LastIndex(msg, "— audit.example.com ") + len("— audit.example.com ")
	sig, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(msg[i:]))
	sig[4+7]++ // the last byte of the timestamp
	tampered := msg[:i] + base64.StdEncoding.EncodeToString(sig) + "\n"
	if _, err := tlog.CheckpointTime([]byte(tampered), vkey); err == nil || errors.Is(err, tlog.ErrNoTimestamp) {
		t.Fatalf("a changed timestamp: %v", err)
	}
}
