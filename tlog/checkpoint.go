package tlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/trail-audit/trail"
)

// Origin returns the checkpoint origin of an organization's log (SPEC §6):
// <origin prefix>/<organization id>.
func Origin(prefix, orgID string) string { return prefix + "/" + orgID }

// CheckpointText returns the body of a C2SP tlog-checkpoint: origin, tree
// size and base64 root hash, one a line.
func CheckpointText(origin string, size int64, root [trail.HashSize]byte) string {
	return origin + "\n" + strconv.FormatInt(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root[:]) + "\n"
}

// Sign signs a checkpoint of an organization's tree, and with ts, when
// not nil, the time beside it (see Timestamper).
func Sign(signer note.Signer, ts *Timestamper, prefix, orgID string, size int64, root [trail.HashSize]byte) (string, error) {
	signers := []note.Signer{signer}
	if ts != nil {
		signers = append(signers, ts)
	}
	msg, err := note.Sign(&note.Note{Text: CheckpointText(Origin(prefix, orgID), size, root)}, signers...)
	if err != nil {
		return "", fmt.Errorf("sign checkpoint: %w", err)
	}
	return string(msg), nil
}

// OpenedCheckpoint is a checkpoint whose signature was verified.
type OpenedCheckpoint struct {
	Origin string
	Size   int64
	Root   [trail.HashSize]byte
}

// OrganizationID returns the organization named by the origin: what
// follows its last "/".
func (c *OpenedCheckpoint) OrganizationID() string {
	return c.Origin[strings.LastIndexByte(c.Origin, '/')+1:]
}

// OpenCheckpoint verifies a signed checkpoint with the verifier key and
// parses it. It fails for a bad or missing signature and for text that is
// not a tlog-checkpoint.
func OpenCheckpoint(msg []byte, vkey string) (*OpenedCheckpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("checkpoint signature: %w", err)
	}
	return ParseCheckpointText(n.Text)
}

// ParseCheckpointText parses the body of a tlog-checkpoint (no signature
// check).
func ParseCheckpointText(text string) (*OpenedCheckpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return nil, errors.New("checkpoint: want origin, size and root hash lines")
	}
	c := &OpenedCheckpoint{Origin: lines[0]}
	if c.Origin == "" {
		return nil, errors.New("checkpoint: empty origin")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("checkpoint: bad tree size %q", lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != trail.HashSize {
		return nil, fmt.Errorf("checkpoint: bad root hash %q", lines[2])
	}
	copy(c.Root[:], root)
	return c, nil
}

// LoadOrCreateKey reads the signing key (a note signer key,
// "PRIVATE+KEY+name+hash+key") from path, or, when the file does not exist,
// creates one named name and writes it with mode 0600. It returns the
// signer and the verifier key.
func LoadOrCreateKey(path, name string) (note.Signer, string, error) {
	k, err := LoadOrCreateKeys(path, name)
	if err != nil {
		return nil, "", err
	}
	return k.Signer, k.VerifierKey, nil
}

// LogKeys are what the signing key file gives: the checkpoints' signer,
// the timestamper that signs the time beside them, and the verifier key
// that checks both.
type LogKeys struct {
	Signer      note.Signer
	Timestamper *Timestamper
	VerifierKey string
}

// LoadOrCreateKeys is LoadOrCreateKey, with the timestamper of the key.
func LoadOrCreateKeys(path, name string) (*LogKeys, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if data, err = createKeyFile(path, name); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("read signing key file: %w", err)
	}
	return ParseKeys(string(data))
}

// ParseKeys reads a note signer key (PRIVATE+KEY+name+hash+key).
func ParseKeys(skey string) (*LogKeys, error) {
	skey = strings.TrimSpace(skey)
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	vkey, err := verifierKey(skey)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	ts, err := NewTimestamper(skey)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return &LogKeys{Signer: signer, Timestamper: ts, VerifierKey: vkey}, nil
}

// createKeyFile writes a new signing key to path, unless another process
// (a node starting at the same moment) was first, and returns the key the
// file holds. The key is written whole to a temporary file and linked into
// place, so no process ever reads a half-written key.
func createKeyFile(path, name string) ([]byte, error) {
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, fmt.Errorf("create signing key named %q: %w", name, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, ".signing-key-*")
	if err != nil {
		return nil, fmt.Errorf("create signing key file: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write signing key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create signing key file: %w", err)
	}
	// Ours, or the one another process linked first.
	return os.ReadFile(path)
}

// verifierKey derives the verifier key of a signer key:
// PRIVATE+KEY+<name>+<hash>+<base64(alg ‖ seed)> gives
// <name>+<hash>+<base64(alg ‖ public key)>.
func verifierKey(skey string) (string, error) {
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 33 || raw[0] != 1 {
		return "", errors.New("not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}
