// Package ident generates Trail's identifiers: ULIDs, with a prefix for
// resources (org_, key_) and bare for events, API key secrets and claim
// tokens.
package ident

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"io"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Generator makes ULIDs that are strictly increasing within one process.
// It is safe for concurrent use.
type Generator struct {
	mu      sync.Mutex // mu guards entropy
	entropy io.Reader
}

// NewGenerator returns a Generator using crypto/rand.
func NewGenerator() *Generator {
	return &Generator{entropy: ulid.Monotonic(rand.Reader, 0)}
}

// New returns a new ULID for time t.
func (g *Generator) New(t time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return ulid.MustNew(ulid.Timestamp(t), g.entropy).String()
}

var secretEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Secret returns a new API key secret: "sk_" and 52 random characters
// (260 bits).
func Secret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return "sk_" + secretEncoding.EncodeToString(b[:])
}

// Claim returns a new random token (96 bits, hex) that names one holder's
// claim on a job.
func Claim() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// Token returns a new random secret with the given prefix and 52
// characters (260 bits), for links and sessions.
func Token(prefix string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + secretEncoding.EncodeToString(b[:])
}
