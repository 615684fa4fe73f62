package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/tlog"
)

// logFlags are the flags of the checkpoints' signing identity.
type logFlags struct {
	signingKeyFile string
	logOrigin      string
}

// logIdentity is the signing key and origin prefix the checkpoints use.
type logIdentity struct {
	Signer      note.Signer
	Timestamper *tlog.Timestamper
	Key         string // verifier key
	Origin      string // origin prefix
}

// defaultOrigin derives an origin prefix from the listen address: the
// address itself, or the host name and port when it listens on every
// interface.
func defaultOrigin(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "trail"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		} else {
			host = "localhost"
		}
	}
	return net.JoinHostPort(host, port)
}

// validOrigin reports whether s can be a signed-note key name: not
// empty, no space and no '+'.
func validOrigin(s string) bool {
	return s != "" && !strings.ContainsAny(s, " +\t\n") && !strings.HasSuffix(s, "/")
}

// loadLogIdentity reads or creates the signing key and checks the key and
// origin against those the database was first used with (SPEC §11): a
// node with other ones refuses to start, naming them. The origin prefix
// is fixed at first use; without --log-origin the stored one is used.
func loadLogIdentity(ctx context.Context, lf *logFlags, dataDir, addr string, logs trail.LogStore) (*logIdentity, error) {
	storedOrigin, err := logs.Setting(ctx, trail.SettingLogOrigin)
	if err != nil {
		return nil, err
	}
	origin := lf.logOrigin
	switch {
	case origin == "" && storedOrigin != "":
		origin = storedOrigin
	case origin == "":
		origin = defaultOrigin(addr)
	}
	if !validOrigin(origin) {
		return nil, fmt.Errorf("--log-origin %q: want a name without spaces or '+', such as trail.example.com", origin)
	}
	path := lf.signingKeyFile
	if path == "" {
		path = filepath.Join(dataDir, "log-signing.key")
	}
	keys, err := tlog.LoadOrCreateKeys(path, origin)
	if err != nil {
		return nil, fmt.Errorf("signing key file %s: %w", path, err)
	}
	signer, vkey := keys.Signer, keys.VerifierKey
	if got, err := logs.SetSetting(ctx, trail.SettingLogKey, vkey); err != nil {
		return nil, err
	} else if got != vkey {
		return nil, fmt.Errorf("the signing key in %s (verifier key %s) is not the one this database's checkpoints are signed with (%s): give every node the same --signing-key-file", path, vkey, got)
	}
	if got, err := logs.SetSetting(ctx, trail.SettingLogOrigin, origin); err != nil {
		return nil, err
	} else if got != origin {
		return nil, fmt.Errorf("--log-origin %q: this database's logs have the origin prefix %q, which cannot change (verifiers know the logs by it)", origin, got)
	}
	return &logIdentity{Signer: signer, Timestamper: keys.Timestamper, Key: vkey, Origin: origin}, nil
}
