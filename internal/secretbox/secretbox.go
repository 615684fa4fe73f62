// Package secretbox seals the secrets Trail keeps for its log streams
// with AES-256-GCM, under a key in a file of its own (SPEC §10).
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trail-audit/trail"
)

// KeySize is the size of a key: AES-256.
const KeySize = 32

// Box seals and opens secrets. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
	key  []byte
}

// New returns a Box with the key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret key: want %d bytes, have %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead, key: key}, nil
}

// Seal encrypts plain, bound to ad (the stream's ID, so that sealed
// secrets cannot be moved to another stream): a random 96-bit nonce and
// the ciphertext with its tag.
func (b *Box) Seal(plain []byte, ad string) []byte {
	nonce := make([]byte, b.aead.NonceSize(), b.aead.NonceSize()+len(plain)+b.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return b.aead.Seal(nonce, nonce, plain, []byte(ad))
}

// Open decrypts what Seal sealed with the same ad.
func (b *Box) Open(sealed []byte, ad string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < n+b.aead.Overhead() {
		return nil, errors.New("open secrets: too short")
	}
	plain, err := b.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, errors.New("open secrets: not sealed with this secret key, or altered")
	}
	return plain, nil
}

// Check returns a value that names the key without revealing it: every
// node of a database stores or compares it, so that a node with another
// key refuses to start rather than fail to open every secret.
func (b *Box) Check() string {
	m := hmac.New(sha256.New, b.key)
	m.Write([]byte("trail secret key check"))
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// LoadOrCreate reads the key in path (64 hex characters), or creates it
// with mode 0600 when the file does not exist. Nodes starting together
// agree: the key is written to a temporary file and linked into place.
func LoadOrCreate(path string) (*Box, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		created, err := create(path)
		if err != nil {
			return nil, false, err
		}
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, false, err
		}
		box, err := parse(path, data)
		return box, created, err
	} else if err != nil {
		return nil, false, fmt.Errorf("secret key: %w", err)
	}
	box, err := parse(path, data)
	return box, false, err
}

func parse(path string, data []byte) (*Box, error) {
	key, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("secret key %s: want %d hex characters", path, 2*KeySize)
	}
	return New(key)
}

func create(path string) (bool, error) {
	var key [KeySize]byte
	if _, err := rand.Read(key[:]); err != nil {
		return false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("secret key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".secret-key-*")
	if err != nil {
		return false, fmt.Errorf("secret key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(hex.EncodeToString(key[:]) + "\n"); err != nil {
		tmp.Close()
		return false, fmt.Errorf("secret key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return false, fmt.Errorf("secret key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return false, nil // another node made it first
	} else if err != nil {
		return false, fmt.Errorf("secret key: %w", err)
	}
	return true, nil
}

// SealStream seals s.Secrets into s.Sealed, bound to the stream's ID,
// and records which secrets are set.
func (b *Box) SealStream(s *trail.Stream) error {
	plain, err := json.Marshal(&s.Secrets)
	if err != nil {
		return err
	}
	s.Sealed = b.Seal(plain, s.ID)
	s.SetSecretFields()
	return nil
}

// OpenStream opens s.Sealed into s.Secrets.
func (b *Box) OpenStream(s *trail.Stream) error {
	plain, err := b.Open(s.Sealed, s.ID)
	if err != nil {
		return fmt.Errorf("log stream %s: %w", s.ID, err)
	}
	s.Secrets = trail.StreamSecrets{}
	return json.Unmarshal(plain, &s.Secrets)
}
