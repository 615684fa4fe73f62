package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBackupRestore: trail backup copies the SQLite database while trail
// serve takes a load of writes; the backup restores into a new data
// directory, where fsck passes and every event acknowledged before the
// backup began is found, and trail serve runs on it. Restore refuses a
// database in use, and an existing one without --replace (issue 20,
// point 2).
func TestBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir, restored := t.TempDir(), t.TempDir()
	backup := filepath.Join(t.TempDir(), "trail-backup.db")
	p := startServe(t, []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + dir, "TRAIL_RATE_LIMIT=0"})
	t.Cleanup(func() { p.cmd.Process.Kill(); p.wait() })
	const org = "org_backup"
	if code, body := post(t, p.URL+"/organizations", testAdminKey, map[string]any{"id": org, "name": "Backup"}); code != 201 {
		t.Fatalf("%d %v", code, body)
	}

	// A load of writes, before, during and after the backup.
	load := &faultLoad{acked: map[string]bool{}, statuses: map[int]int{}}
	var (
		before     map[string]bool
		backupDone bool
		afterAcks  int
		wg         sync.WaitGroup
	)
	deadline := time.Now().Add(2 * time.Minute)
	wg.Add(1)
	go func() {
		defer wg.Done()
		load.run(t, p.URL, org, 2, 200, func(l *faultLoad) bool {
			if backupDone && afterAcks == 0 {
				afterAcks = len(l.acked)
			}
			return (backupDone && len(l.acked) >= afterAcks+200) || time.Now().After(deadline)
		})
	}()
	for {
		load.mu.Lock()
		n := len(load.acked)
		if n >= 3000 {
			before = maps.Clone(load.acked)
		}
		load.mu.Unlock()
		if before != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d events acknowledged", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, errOut, err := runMain(t, map[string]string{"TRAIL_DATA_DIR": dir}, "backup", "--to", backup)
	if err != nil {
		t.Fatalf("backup: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "backed up") || !strings.Contains(out, "log-signing.key") {
		t.Errorf("backup's report: %q", out)
	}
	if fi, err := os.Stat(backup); err != nil {
		t.Fatal(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("the backup's mode is %v, want 0600 (it holds every organization's log)", fi.Mode())
	}
	load.mu.Lock()
	backupDone = true
	load.mu.Unlock()
	wg.Wait()
	load.check(t, "during the backup")
	t.Logf("%d events acknowledged before the backup, %d in all", len(before), len(load.acked))
	if len(load.acked) <= len(before) {
		t.Fatalf("no write was acknowledged during or after the backup: the load stopped (%v)", load.statuses)
	}

	// A second backup to the same file is refused: backups never overwrite.
	if _, _, err := runMain(t, map[string]string{"TRAIL_DATA_DIR": dir}, "backup", "--to", backup); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("backup over an existing file: %v, want a refusal", err)
	}
	// Restoring over the live database is refused, even with --replace.
	if _, _, err := runMain(t, map[string]string{"TRAIL_DATA_DIR": dir}, "restore", "--from", backup, "--replace"); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("restore over the live database: %v, want a refusal", err)
	}

	// Into a new directory: it says which keys it needs.
	out, errOut, err = runMain(t, map[string]string{"TRAIL_DATA_DIR": restored}, "restore", "--from", backup)
	if err != nil {
		t.Fatalf("restore: %v\n%s%s", err, out, errOut)
	}
	if !strings.Contains(out, "restored") || !strings.Contains(out, "copy the signing key") {
		t.Errorf("restore's report: %q", out)
	}
	if _, _, err := runMain(t, map[string]string{"TRAIL_DATA_DIR": restored}, "restore", "--from", backup); err == nil || !strings.Contains(err.Error(), "--replace") {
		t.Errorf("restore over an existing database without --replace: %v, want a refusal", err)
	}
	copyKeys(t, dir, restored)
	env := map[string]string{"TRAIL_DATA_DIR": restored}
	if out, errOut, err := runMain(t, env, "fsck"); err != nil {
		t.Fatalf("fsck of the restored database: %v\n%s%s", err, out, errOut)
	}
	// Restoring again, over the stopped database, with --replace: allowed.
	if out, _, err := runMain(t, env, "restore", "--from", backup, "--replace"); err != nil || !strings.Contains(out, "is the database's signing key") {
		t.Fatalf("restore --replace over a stopped database: %v %q", err, out)
	}

	q := startServe(t, []string{"TRAIL_ADMIN_KEY=" + testAdminKey, "TRAIL_DATA_DIR=" + restored, "TRAIL_RATE_LIMIT=0"})
	t.Cleanup(func() { q.cmd.Process.Kill(); q.wait() })
	found := readLog(t, q.URL, org)
	have := map[string]bool{}
	for _, id := range found {
		have[id] = true
	}
	for id := range before {
		if !have[id] {
			t.Fatalf("event %s, acknowledged before the backup began, is not in the restored database (%d of %d there)", id, len(found), len(before))
		}
	}
	if len(found) >= len(load.acked) {
		t.Errorf("the restored database holds %d events, the live one %d: the backup is not a copy of one moment", len(found), len(load.acked))
	}
	// It serves writes.
	if code, body := post(t, q.URL+"/audit_logs/events", testAdminKey, map[string]any{"organization_id": org, "event": event(1)}); code != 201 && code != 200 {
		t.Fatalf("write to the restored server: %d %v", code, body)
	}
}

// copyKeys copies a data directory's signing and secret keys to another,
// as an operator restoring a database does.
func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	for _, k := range []string{"log-signing.key", "secret.key"} {
		b, err := os.ReadFile(filepath.Join(from, k))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, k), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
