package tlog_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

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
