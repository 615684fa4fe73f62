// Package s3test runs versitygw, a real S3 gateway that checks SigV4 as
// AWS does, over a directory, for tests of what Trail writes to S3 (log
// streams) and of what writes Trail's database to S3 (Litestream).
//
// .ci/run installs it (go install
// github.com/versity/versitygw/cmd/versitygw@v1.8.0); elsewhere a test
// that needs it skips without it, unless TRAIL_REQUIRE_S3=1 makes that a
// failure.
package s3test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail/internal/testwait"
)

// The gateway's root credentials.
const (
	Access = "trailtestroot"
	Secret = "trail-test-root-secret-0123456789"
)

// Gateway is a running versitygw.
type Gateway struct {
	// Endpoint is its http://127.0.0.1:PORT.
	Endpoint string
	// Dir is the directory it serves: each bucket is a directory in it.
	Dir string
}

// Bucket creates a bucket (a directory of the gateway's) and returns its
// name.
func (g *Gateway) Bucket(t testing.TB, name string) string {
	t.Helper()
	if err := os.Mkdir(filepath.Join(g.Dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	return name
}

// Start runs versitygw on a loopback port over a new directory until the
// test ends.
func Start(t testing.TB) *Gateway {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "versitygw")
		if _, err := os.Stat(bin); err != nil {
			if os.Getenv("TRAIL_REQUIRE_S3") == "1" {
				t.Fatal("versitygw is required (TRAIL_REQUIRE_S3=1): go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
			}
			t.Skip("versitygw not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	cmd := exec.Command(bin, "--port", addr, "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+Access, "ROOT_SECRET_KEY="+Secret)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := testwait.Poll(20*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("versitygw did not start: %s", out.String())
	}
	return &Gateway{Endpoint: "http://" + addr, Dir: dir}
}
