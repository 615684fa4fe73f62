// Command trail runs and administers Trail, the self-hosted, tamper-evident
// audit-log service. See `trail -h`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	_ "time/tzdata" // time zones for the UI where the system has none (a scratch image)

	"github.com/trail-audit/trail/tlog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.Run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "trail:", err)
		os.Exit(1)
	}
}

// Main runs one subcommand. Its fields let tests drive it.
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// NewMain returns a Main on the process's streams and environment.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

const usage = `Trail is a self-hosted, tamper-evident audit-log service.

Usage:

	trail <command> [flags]

Commands:

	serve     run the API and background workers
	migrate   run database migrations and exit
	keys      create, list and revoke API keys on the database directly
	export    export a period of an organization's log to CSV or NDJSON, through the API
	verify    verify an NDJSON file of events against a signed checkpoint, offline
	portal    print a link that opens an organization's audit log in a browser
	fsck      recompute every organization's tree from the database and check it
	purge     purge the events past their organization's retention, once
	import    import existing audit logs (WorkOS CSV, Trail exports, NDJSON) into an organization
	backup    write a consistent copy of the SQLite database while it serves
	restore   restore a backup into a data directory
	bench     start a server on a temporary directory and measure it
	version   print the version, commit and build date

Run 'trail <command> -h' for a command's flags. Every flag can also be set
with a TRAIL_* environment variable: --data-dir is TRAIL_DATA_DIR.
`

// Run runs the subcommand named by args[0].
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return flag.ErrHelp
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return m.runServe(ctx, rest)
	case "migrate":
		return m.runMigrate(ctx, rest)
	case "keys":
		return m.runKeys(ctx, rest)
	case "portal":
		return m.runPortal(ctx, rest)
	case "bench":
		return m.runBench(ctx, rest)
	case "export":
		return m.runExport(ctx, rest)
	case "verify":
		return m.runVerify(ctx, rest)
	case "fsck":
		return m.runFsck(ctx, rest)
	case "purge":
		return m.runPurge(ctx, rest)
	case "import":
		return m.runImport(ctx, rest)
	case "backup":
		return m.runBackup(ctx, rest)
	case "restore":
		return m.runRestore(ctx, rest)
	case "version":
		return m.runVersion(rest)
	case "-h", "--help", "help":
		fmt.Fprint(m.Stdout, usage)
		return nil
	default:
		fmt.Fprint(m.Stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

// logger is the log of commands other than serve.
func (m *Main) logger() *slog.Logger { return slog.New(slog.NewTextHandler(m.Stderr, nil)) }

// newFlagSet returns a flag set whose usage names the command.
func (m *Main) newFlagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("trail "+name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(m.Stderr, "%s\n\nUsage: trail %s [flags]\n\nFlags (each also read from TRAIL_<FLAG> in upper case, - as _):\n", summary, name)
		fs.PrintDefaults()
	}
	return fs
}

// parse applies TRAIL_* environment variables, then the arguments: flags
// win over the environment, which wins over defaults.
func (m *Main) parse(fs *flag.FlagSet, args []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "TRAIL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := m.Getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// parseAndOpen parses the arguments of a command whose flag set holds sf's
// flags, and opens the database they name.
func (m *Main) parseAndOpen(ctx context.Context, fs *flag.FlagSet, sf *storageFlags, args []string) (*store, error) {
	if err := m.parse(fs, args); err != nil {
		return nil, err
	}
	return sf.openDB(ctx, m.logger())
}

func (m *Main) runPurge(ctx context.Context, args []string) error {
	fs := m.newFlagSet("purge", "Purge the events past their organization's retention, once, as trail serve does\n"+
		"every --purge-interval: their contents go, their ids, indexes and leaf hashes stay. Each\n"+
		"organization's run is recorded in its log and signed (with the signing key, as serve\n"+
		"does) before anything of it goes.")
	var sf storageFlags
	var lf logFlags
	sf.register(fs)
	fs.StringVar(&lf.signingKeyFile, "signing-key-file", "", "the signing key of the checkpoints (default <data-dir>/log-signing.key)")
	db, err := m.parseAndOpen(ctx, fs, &sf, args)
	if err != nil {
		return err
	}
	defer db.Close()
	id, err := loadLogIdentity(ctx, &lf, sf.dataDir, "", db.Logs)
	if err != nil {
		return err
	}
	ig := &tlog.Integrator{Store: db.Logs, Signer: id.Signer, Timestamper: id.Timestamper, Origin: id.Origin}
	purger := &tlog.Purger{Store: db.Logs, Events: db.Events, Key: id.Key,
		// The record is signed here, whether or not a server runs.
		Await: func(ctx context.Context, orgID string, index int64) error {
			for range 10 {
				if _, err := ig.Integrate(ctx); err != nil {
					return err
				}
				if cp, err := db.Logs.LatestCheckpoint(ctx, orgID); err == nil && cp.Size > index {
					return nil
				}
			}
			return fmt.Errorf("no checkpoint covers index %d of %s", index, orgID)
		}}
	res, err := purger.Purge(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "purged %d events (%d whole partitions)\n", res.Events, res.Partitions)
	return nil
}

func (m *Main) runMigrate(ctx context.Context, args []string) error {
	fs := m.newFlagSet("migrate", "Run the database migrations and exit.")
	var sf storageFlags
	sf.register(fs)
	db, err := m.parseAndOpen(ctx, fs, &sf, args)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Fprintf(m.Stdout, "database is at schema version %d\n", db.SchemaVersion)
	return nil
}
