package tlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Trail signs the time beside each checkpoint it signs (SPEC §6): the note
// carries, after the log's Ed25519 signature, a C2SP tlog-cosignature
// cosignature/v1 by the same key (signature type 0x04, so another key ID),
// whose signed message is
//
//	cosignature/v1
//	time <seconds since the epoch>
//	<the checkpoint body>
//
// The checkpoint body stays plain C2SP tlog-checkpoint, and verifiers that
// do not know the timestamp (witnesses, monitors) ignore its line, as
// signed notes require. The header line keeps a timestamp from being taken
// for a checkpoint signature (no origin is "cosignature/v1"), and C2SP
// lets a cosignature reuse a key under another algorithm byte. A timestamp
// proves when Trail's key signed the checkpoint, so that a purge can show
// the events it removed were old enough (SPEC §6): whoever edits the
// database cannot make one.

// Timestamper signs the time beside a checkpoint, as a note.Signer whose
// signature is a cosignature/v1 with the time of its clock.
type Timestamper struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
	// Now is the clock; time.Now when nil. Tests set it to sign
	// checkpoints in the past.
	Now func() time.Time
}

// NewTimestamper returns the timestamper of a note signer key
// (PRIVATE+KEY+name+hash+base64(0x01 ‖ Ed25519 seed)): the same key and
// name, as cosignature/v1.
func NewTimestamper(skey string) (*Timestamper, error) {
	parts := strings.SplitN(strings.TrimSpace(skey), "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return nil, errors.New("not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return nil, errors.New("not an Ed25519 note signer key")
	}
	key := ed25519.NewKeyFromSeed(raw[1:])
	pub := append([]byte{0x04}, key.Public().(ed25519.PublicKey)...)
	h := sha256.New()
	h.Write([]byte(parts[2] + "\n"))
	h.Write(pub)
	return &Timestamper{name: parts[2], hash: binary.BigEndian.Uint32(h.Sum(nil)), key: key}, nil
}

// Name returns the key's name (note.Signer).
func (t *Timestamper) Name() string { return t.name }

// KeyHash returns the cosignature key's ID (note.Signer).
func (t *Timestamper) KeyHash() uint32 { return t.hash }

// Sign signs the checkpoint body msg with the time of the clock, in whole
// seconds (note.Signer): timestamp ‖ Ed25519 signature.
func (t *Timestamper) Sign(msg []byte) ([]byte, error) {
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	ts := now().Unix()
	if ts < 0 {
		return nil, errors.New("timestamp: the clock is before 1970")
	}
	m := fmt.Appendf(nil, "cosignature/v1\ntime %d\n%s", ts, msg)
	sig := binary.BigEndian.AppendUint64(make([]byte, 0, 8+ed25519.SignatureSize), uint64(ts))
	return append(sig, ed25519.Sign(t.key, m)...), nil
}

// ErrNoTimestamp is CheckpointTime's error for a checkpoint that carries
// no timestamp: one signed before Trail timestamped its checkpoints.
var ErrNoTimestamp = errors.New("the checkpoint carries no timestamp")

// CheckpointTime returns the time that Trail's timestamp in a signed
// checkpoint note states, verified with the log's verifier key vkey
// (the checkpoint's own signature is checked by OpenCheckpoint). It
// returns ErrNoTimestamp when the note has no timestamp line of that key,
// and another error when it has one that does not verify.
func CheckpointTime(msg []byte, vkey string) (time.Time, error) {
	cvkey, err := fnote.VKeyToCosignatureV1(strings.TrimSpace(vkey))
	if err != nil {
		return time.Time{}, fmt.Errorf("verifier key: %w", err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(cvkey)
	if err != nil {
		return time.Time{}, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		return time.Time{}, ErrNoTimestamp
	} else if err != nil {
		return time.Time{}, fmt.Errorf("checkpoint timestamp: %w", err)
	}
	for _, s := range n.Sigs {
		if s.Name == v.Name() && s.Hash == v.KeyHash() {
			t, err := fnote.CoSigV1Timestamp(s)
			if err != nil {
				return time.Time{}, fmt.Errorf("checkpoint timestamp: %w", err)
			}
			return t.UTC(), nil
		}
	}
	return time.Time{}, ErrNoTimestamp
}
