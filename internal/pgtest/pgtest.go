// Package pgtest gives tests a PostgreSQL database of their own: a fresh
// schema, dropped when the test ends.
//
// The server is TRAIL_TEST_POSTGRES_URL (or TEST_DATABASE_URL), else the
// local default postgres://postgres@127.0.0.1:5432/test. When it cannot be
// reached the test is skipped, unless TRAIL_REQUIRE_POSTGRES=1, which makes
// it fail: CI sets it.
//
// CitusURL does the same on a Citus cluster's coordinator,
// TRAIL_TEST_CITUS_URL, which has no default: tests on Citus skip unless it
// is set, and fail instead with TRAIL_REQUIRE_CITUS=1.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultURL is the server tried when no variable names one.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns the server's URL, or skips (or fails) the test when it
// cannot be reached.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TRAIL_TEST_POSTGRES_URL")
	if u == "" {
		u = os.Getenv("TEST_DATABASE_URL")
	}
	if u == "" {
		u = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		if os.Getenv("TRAIL_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL is required (TRAIL_REQUIRE_POSTGRES=1) but %s cannot be reached: %v", redact(u), err)
		}
		t.Skipf("PostgreSQL not reachable at %s (set TRAIL_TEST_POSTGRES_URL): %v", redact(u), err)
	}
	return u
}

// CitusURL is URL on the Citus coordinator of TRAIL_TEST_CITUS_URL: the
// test's schema is distributed there. The test is skipped when the
// variable is not set or the coordinator cannot be reached, unless
// TRAIL_REQUIRE_CITUS=1, which makes it fail.
func CitusURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("TRAIL_TEST_CITUS_URL")
	require := os.Getenv("TRAIL_REQUIRE_CITUS") == "1"
	if u == "" {
		if require {
			t.Fatal("Citus is required (TRAIL_REQUIRE_CITUS=1) but TRAIL_TEST_CITUS_URL is not set")
		}
		t.Skip("no Citus coordinator (set TRAIL_TEST_CITUS_URL)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var citus bool
	conn, err := pgx.Connect(ctx, u)
	if err == nil {
		err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')`).Scan(&citus)
		conn.Close(ctx)
	}
	if err == nil && !citus {
		err = errors.New("the database has no citus extension")
	}
	if err != nil {
		if require {
			t.Fatalf("Citus is required (TRAIL_REQUIRE_CITUS=1) but %s: %v", redact(u), err)
		}
		t.Skipf("Citus coordinator %s: %v", redact(u), err)
	}
	return schemaURL(t, u)
}

// URL creates a schema for the test and returns a URL whose connections
// use it. The schema is dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	return schemaURL(t, ServerURL(t))
}

func schemaURL(t testing.TB, base string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "trail_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { DropSchema(t, base, schema) })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	if q.Get("pool_max_conns") == "" {
		q.Set("pool_max_conns", "6")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// DropSchema drops schema and all it holds, on the server of base. On
// Citus, drops of distributed tables in parallel tests can deadlock with
// each other (each locks metadata on every node); a drop chosen as the
// deadlock's victim is tried again.
func DropSchema(t testing.TB, base, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	for try := 1; ; try++ {
		_, err = conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`)
		var pgErr *pgconn.PgError
		if err == nil || try == 5 || !errors.As(err, &pgErr) || pgErr.Code != "40P01" {
			break
		}
		time.Sleep(time.Duration(try) * 100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("drop schema %s: %v", schema, err)
	}
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the configured URL"
	}
	return u.Redacted()
}
