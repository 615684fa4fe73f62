package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/tlog"
)

// errFailed is returned once a command has printed why it failed.
var errFailed = errors.New("verification failed")

// readKey takes a verifier key given as text (name+hash+key) or as the
// path of a file holding one.
func readKey(s string) (string, error) {
	if _, err := note.NewVerifier(s); err == nil {
		return s, nil
	}
	data, err := os.ReadFile(s)
	if err != nil {
		return "", fmt.Errorf("--key: neither a verifier key (name+hash+key) nor a readable file: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

func (m *Main) runVerify(ctx context.Context, args []string) error {
	fs := m.newFlagSet("verify", "Verify an NDJSON file of stored events against a signed checkpoint, offline.\n\n"+
		"Usage: trail verify --key KEY --checkpoint FILE [--subset] [--previous FILE [--consistency-proof FILE]] [EVENTS.ndjson|-]\n\n"+
		"KEY is the verifier key (GET /audit_logs/log_key) or a file holding it. Each line is a\n"+
		"stored event as the API returns it. The lines must be every event the checkpoint covers,\n"+
		"from index 0, and form its tree; a line with a \"proof\" is also checked by it. --subset\n"+
		"checks some events only, each by its proof. --previous checks that an earlier\n"+
		"checkpoint of the log is consistent with this one (no forked or rewritten history), from\n"+
		"the lines or from a consistency proof (GET /audit_logs/proofs/consistency); with a proof\n"+
		"and no events file, only the checkpoints are checked. Exits 1 naming the first bad line.")
	var key, checkpoint, previous, consistency string
	fs.StringVar(&key, "key", "", "the checkpoints' verifier key, or a file holding it (required)")
	fs.StringVar(&checkpoint, "checkpoint", "", "a file holding the signed checkpoint (GET /audit_logs/checkpoint) (required)")
	fs.StringVar(&previous, "previous", "", "a file holding an earlier signed checkpoint of the same log, to check consistency with")
	fs.StringVar(&consistency, "consistency-proof", "", "a file holding the JSON consistency proof from --previous to --checkpoint")
	var subset bool
	fs.BoolVar(&subset, "subset", false, "the file holds some events only, each with its proof: check each, not the whole log")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if key == "" || checkpoint == "" || fs.NArg() > 1 || (consistency != "" && previous == "") {
		fs.Usage()
		return errors.New("verify needs --key, --checkpoint and at most one file; --consistency-proof needs --previous")
	}
	vkey, err := readKey(key)
	if err != nil {
		return err
	}
	opts := tlog.VerifyOptions{Key: vkey, Subset: subset}
	if opts.Checkpoint, err = os.ReadFile(checkpoint); err != nil {
		return fmt.Errorf("--checkpoint: %w", err)
	}
	if previous != "" {
		if opts.Previous, err = os.ReadFile(previous); err != nil {
			return fmt.Errorf("--previous: %w", err)
		}
	}
	if consistency != "" {
		data, err := os.ReadFile(consistency)
		if err != nil {
			return fmt.Errorf("--consistency-proof: %w", err)
		}
		var p trail.ConsistencyProof
		if err := json.Unmarshal(data, &p); err != nil {
			return fmt.Errorf("--consistency-proof: not a consistency proof: %w", err)
		}
		opts.ConsistencyProof = p.Hashes
		if opts.ConsistencyProof == nil {
			opts.ConsistencyProof = [][]byte{}
		}
	}
	var in io.Reader = os.Stdin
	name := "standard input"
	switch {
	case fs.NArg() == 1 && fs.Arg(0) != "-":
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, filepath.Base(fs.Arg(0))
	case fs.NArg() == 0 && consistency != "":
		in, name = nil, "checkpoints"
	}
	if in != nil {
		// A gzipped export (--gzip) is read as it is.
		br := bufio.NewReader(in)
		if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
			zr, err := gzip.NewReader(br)
			if err != nil {
				return err
			}
			in = zr
		} else {
			in = br
		}
	}
	res, err := opts.Verify(in)
	if err != nil {
		var ve *tlog.VerifyError
		if errors.As(err, &ve) {
			fmt.Fprintf(m.Stderr, "FAIL %s: %v\n", name, err)
			return errFailed
		}
		return err
	}
	if in != nil {
		how := "each line by its inclusion proof; the file is a subset, its completeness not checked"
		if res.Tree {
			how = "the lines are the whole log and form the checkpoint's tree"
			if res.Proven > 0 {
				how += ", each line also by its proof"
			}
		}
		fmt.Fprintf(m.Stdout, "OK %s: %d event(s) of %s verified against the signed checkpoint of tree size %d (%s; %d purged)\n",
			name, res.Lines, res.Origin, res.TreeSize, how, res.Purged)
	}
	if res.Consistent {
		fmt.Fprintf(m.Stdout, "OK the previous checkpoint is consistent with the checkpoint of tree size %d: no history was rewritten\n", res.TreeSize)
	}
	return nil
}

func (m *Main) runFsck(ctx context.Context, args []string) error {
	fs := m.newFlagSet("fsck", "Recompute every organization's Merkle tree from the database and compare it with\n"+
		"the stored tree and the signed checkpoints. Exits 1 naming the first bad entry of each\n"+
		"organization that has one.")
	var sf storageFlags
	var lf logFlags
	var key, org string
	sf.register(fs)
	fs.StringVar(&lf.signingKeyFile, "signing-key-file", "", "the signing key whose verifier key checks the checkpoints (default <data-dir>/log-signing.key)")
	fs.StringVar(&key, "key", "", "check the checkpoints with this verifier key (or a file holding it) instead of the signing key's")
	fs.StringVar(&org, "org", "", "check only this organization")
	thorough := fs.Bool("thorough", false, "compare every word of each event's full-text entry (SQLite: slower; by default it compares how many there are)")
	db, err := m.parseAndOpen(ctx, fs, &sf, args)
	if err != nil {
		return err
	}
	defer db.Close()
	vkey, err := m.fsckKey(ctx, key, lf, sf, db.Logs)
	if err != nil {
		return err
	}
	origin, err := db.Logs.Setting(ctx, trail.SettingLogOrigin)
	if err != nil {
		return err
	}
	var orgs []string
	if org != "" {
		orgs = []string{org}
	} else {
		f := trail.ListFilter{Limit: 100, Ascending: true}
		for {
			list, more, err := db.Organizations.FindOrganizations(ctx, nil, f)
			if err != nil {
				return err
			}
			for _, o := range list {
				orgs = append(orgs, o.ID)
			}
			if !more || len(list) == 0 {
				break
			}
			f.After = list[len(list)-1].ID
		}
	}
	// The events purged before purges kept evidence, as org_system's log
	// records them (its own fsck checks that log).
	legacy, err := tlog.LoadLegacyPurges(ctx, db.Events, db.Logs, vkey)
	if err != nil {
		return err
	}
	opts := tlog.FsckOptions{Key: vkey, Origin: origin, Legacy: legacy, Thorough: *thorough}
	failed := 0
	for _, id := range orgs {
		res, err := opts.Fsck(ctx, db.Logs, id)
		var p *tlog.FsckProblem
		switch {
		case errors.As(err, &p):
			failed++
			fmt.Fprintf(m.Stdout, "FAIL %v\n", p)
		case err != nil:
			return fmt.Errorf("%s: %w", id, err)
		default:
			fmt.Fprintf(m.Stdout, "ok   %s: %d events, tree size %d, %d checkpoints verified, indexes agree\n", id, res.Events, res.TreeSize, res.Checkpoints)
		}
		if res != nil {
			for _, w := range res.Warnings {
				fmt.Fprintf(m.Stdout, "warn %s: %s\n", id, w)
			}
			if n := res.NonCanonical - int64(len(res.Warnings)); n > 0 {
				fmt.Fprintf(m.Stdout, "warn %s: %d more event(s) with numbers not in canonical form\n", id, n)
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(m.Stderr, "fsck: %d of %d organizations have a log that does not verify\n", failed, len(orgs))
		return errFailed
	}
	return nil
}

// fsckKey picks the verifier key that checks the checkpoints: --key, else
// the signing key file's, else (with a warning: the database could have
// been changed with it) the one the database stores.
func (m *Main) fsckKey(ctx context.Context, key string, lf logFlags, sf storageFlags, logs trail.LogStore) (string, error) {
	if key != "" {
		return readKey(key)
	}
	path := lf.signingKeyFile
	if path == "" {
		path = filepath.Join(sf.dataDir, "log-signing.key")
	}
	if _, err := os.Stat(path); err == nil {
		_, vkey, err := tlog.LoadOrCreateKey(path, "unused")
		return vkey, err
	}
	vkey, err := logs.Setting(ctx, trail.SettingLogKey)
	if err != nil {
		return "", err
	}
	if vkey == "" {
		return "", errors.New("no verifier key: give --key or --signing-key-file")
	}
	fmt.Fprintf(m.Stderr, "fsck: no signing key file at %s; checking with the verifier key stored in the database (%s). Give --key to check with a key you trust.\n", path, vkey)
	return vkey, nil
}
