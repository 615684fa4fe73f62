package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/trail-audit/trail"
)

// Backup writes a consistent copy of the database at path to dst while
// others read and write it: SQLite's VACUUM INTO, in one read
// transaction, so the copy holds exactly the transactions committed
// before it began (every event acknowledged by then, since a 2xx follows
// the commit). The copy is written next to dst, synced, and then linked
// to dst, which must not exist: a backup never overwrites a file.
func Backup(ctx context.Context, path, dst string) (size int64, err error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("database %s: %w", path, err)
	}
	if _, err := os.Lstat(dst); err == nil {
		return 0, fmt.Errorf("%s exists: a backup does not overwrite a file", dst)
	}
	part := dst + ".partial"
	if err := os.Remove(part); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	// The copy holds every organization's log: readable by its owner
	// only. VACUUM INTO writes into an empty file, so create it first.
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	f.Close()
	db, err := sql.Open("sqlite", fileDSN(path, "busy_timeout(10000)"))
	if err != nil {
		os.Remove(part)
		return 0, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, part); err != nil {
		os.Remove(part)
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(part) // once linked, only the name goes
	if err := syncFile(part); err != nil {
		return 0, err
	}
	if err := os.Link(part, dst); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return 0, err
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// BackupInfo describes a database file: a backup, before it is restored.
type BackupInfo struct {
	// SchemaVersion is the newest migration applied to it.
	SchemaVersion int
	// LogKey and SecretKeyCheck are the verifier key its checkpoints are
	// signed with and the check value of the key its stream secrets are
	// sealed with (empty if it never served).
	LogKey, SecretKeyCheck string
	// Events is how many events it holds.
	Events int64
}

// CheckBackup checks that the file at path is a whole Trail database
// (SQLite's quick_check: every page and index entry well formed) that
// this binary can open, and describes it.
func CheckBackup(ctx context.Context, path string) (*BackupInfo, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", fileDSN(path, "query_only(1)")+"&mode=ro")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&check); err != nil {
		return nil, fmt.Errorf("%s is not a readable SQLite database: %w", path, err)
	}
	if check != "ok" {
		return nil, fmt.Errorf("%s is damaged: %s", path, check)
	}
	info := &BackupInfo{}
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&info.SchemaVersion); err != nil {
		return nil, fmt.Errorf("%s is not a Trail database (no schema_migrations: %v)", path, err)
	}
	if known := SchemaVersion(); info.SchemaVersion > known {
		return nil, trail.ErrSchemaNewer(info.SchemaVersion, known)
	}
	for _, s := range []struct {
		name string
		to   *string
	}{{trail.SettingLogKey, &info.LogKey}, {"secret_key_check", &info.SecretKeyCheck}} {
		err := db.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, s.name).Scan(s.to)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%s: settings: %w", path, err)
		}
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&info.Events); err != nil {
		return nil, fmt.Errorf("%s: events: %w", path, err)
	}
	return info, nil
}

// Restore puts the backup at from in place of the database at path. It
// refuses while any process has path open (Live), and refuses an existing
// database unless replace is set. The backup is checked (CheckBackup),
// copied next to path, synced and renamed over it; the old database's WAL
// and shared-memory files are removed first, since they belong to it.
func Restore(ctx context.Context, from, path string, replace bool) (*BackupInfo, error) {
	info, err := CheckBackup(ctx, from)
	if err != nil {
		return nil, err
	}
	if live, err := Live(path); err != nil {
		return nil, err
	} else if live {
		return nil, fmt.Errorf("%s is in use (a trail serve, or another program, has it open): stop it before restoring", path)
	}
	if _, err := os.Stat(path); err == nil && !replace {
		return nil, fmt.Errorf("%s exists: restore into a new data directory, or pass --replace to overwrite it", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	part := path + ".restoring"
	if err := copyFile(from, part); err != nil {
		os.Remove(part)
		return nil, fmt.Errorf("restore: %w", err)
	}
	for _, side := range []string{path + "-wal", path + "-shm", path + "-journal"} {
		if err := os.Remove(side); err != nil && !errors.Is(err, os.ErrNotExist) {
			os.Remove(part)
			return nil, err
		}
	}
	if err := os.Rename(part, path); err != nil {
		os.Remove(part)
		return nil, err
	}
	return info, syncDir(filepath.Dir(path))
}

// fileDSN is the modernc DSN of the file at path with pragmas.
func fileDSN(path string, pragmas ...string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return "file:" + path + "?" + q.Encode()
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
