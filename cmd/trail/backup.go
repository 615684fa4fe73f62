package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/trail-audit/trail/sqlite"
	"github.com/trail-audit/trail/tlog"
)

// sqlitePath is the SQLite database file the storage flags name, or an
// error for a PostgreSQL URL (whose backups are the server's:
// docs/OPERATIONS.md).
func (s *storageFlags) sqlitePath(cmd string) (string, error) {
	switch u := s.databaseURL; {
	case u == "":
		return filepath.Join(s.dataDir, "trail.db"), nil
	case strings.HasPrefix(u, "sqlite://") && len(u) > len("sqlite://"):
		return strings.TrimPrefix(u, "sqlite://"), nil
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return "", fmt.Errorf("trail %s is for the embedded SQLite database; back PostgreSQL up with its own tools (pg_basebackup and WAL archiving, or pg_dump): docs/OPERATIONS.md", cmd)
	default:
		return "", fmt.Errorf("--database-url %q: want sqlite://PATH", redactURL(u))
	}
}

func (m *Main) runBackup(ctx context.Context, args []string) error {
	fs := m.newFlagSet("backup", "Write a consistent copy of the SQLite database to a new file while trail serve runs\n"+
		"and writes. The copy holds every event acknowledged before it began. The keys in the\n"+
		"data directory (log-signing.key, secret.key) are not in it: keep a copy of them apart.")
	var sf storageFlags
	sf.register(fs)
	to := fs.String("to", "", "the backup file to write (must not exist)")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		fs.Usage()
		return errors.New("--to FILE is required")
	}
	path, err := sf.sqlitePath("backup")
	if err != nil {
		return err
	}
	start := time.Now()
	size, err := sqlite.Backup(ctx, path, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "backed up %s to %s (%.1f MiB) in %s\n", path, *to, float64(size)/(1<<20), time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(m.Stdout, "the keys are not in the backup: keep %s and %s with it, apart from it (they do not change)\n",
		filepath.Join(filepath.Dir(path), "log-signing.key"), filepath.Join(filepath.Dir(path), "secret.key"))
	return nil
}

func (m *Main) runRestore(ctx context.Context, args []string) error {
	fs := m.newFlagSet("restore", "Restore a backup made by trail backup into a data directory (a new one, or with\n"+
		"--replace the existing one). Refuses while a trail serve, or any program, has the\n"+
		"database open.")
	var sf storageFlags
	sf.register(fs)
	from := fs.String("from", "", "the backup file to restore")
	replace := fs.Bool("replace", false, "overwrite an existing database (never one in use)")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if *from == "" {
		fs.Usage()
		return errors.New("--from FILE is required")
	}
	path, err := sf.sqlitePath("restore")
	if err != nil {
		return err
	}
	info, err := sqlite.Restore(ctx, *from, path, *replace)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "restored %s into %s: %d events, schema version %d (this binary: %d; newer migrations run at the next start)\n",
		*from, path, info.Events, info.SchemaVersion, sqlite.SchemaVersion())
	if info.LogKey == "" {
		return nil
	}
	dir := filepath.Dir(path)
	keyFile := filepath.Join(dir, "log-signing.key")
	data, err := os.ReadFile(keyFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(m.Stdout, "before trail serve: copy the signing key of verifier key %s to %s, and secret.key beside it (trail serve refuses other keys)\n", info.LogKey, keyFile)
	case err != nil:
		return err
	default:
		keys, err := tlog.ParseKeys(string(data))
		if err != nil {
			return fmt.Errorf("%s: %w", keyFile, err)
		}
		if keys.VerifierKey != info.LogKey {
			return fmt.Errorf("restored, but %s is not the key this database's checkpoints are signed with (%s): replace it with that key before trail serve", keyFile, info.LogKey)
		}
		fmt.Fprintf(m.Stdout, "%s is the database's signing key\n", keyFile)
	}
	return nil
}
