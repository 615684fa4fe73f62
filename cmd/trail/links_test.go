package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestWildcardAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"0.0.0.0:8080": true, "[::]:8080": true, ":8080": true, "0.0.0.0:0": true, ":0": true, "[::0]:80": true,
		"127.0.0.1:8080": false, "[::1]:8080": false, "trail.internal:8080": false, "10.0.0.5:80": false,
	} {
		if got := wildcardAddr(addr); got != want {
			t.Errorf("wildcardAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}

// TestServe_LinksBase: serve prints where its links point, warns when
// that is a wildcard address (in its log and as a plain line on stderr),
// and --public-url wins; a --public-url links cannot be built on is
// refused (issue 16, point 8).
func TestServe_LinksBase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, addr, publicURL string
		warn                  bool
		want                  string // in the public_url of the start log; "" for the listen URL
	}{
		{"Wildcard", "0.0.0.0:0", "", true, ""},
		{"Loopback", "127.0.0.1:0", "", false, ""},
		{"WildcardWithPublicURL", "0.0.0.0:0", "https://trail.example.com", false, "https://trail.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stderr bytes.Buffer
			s := &Server{stderr: &stderr, stdout: io.Discard}
			s.dataDir, s.Addr, s.PublicURL, s.LogLevel, s.LogFormat, s.AdminKey = t.TempDir(), tc.addr, tc.publicURL, "info", "text", testAdminKey
			err := s.Open(context.Background())
			defer s.Close()
			if err != nil {
				t.Fatal(err)
			}
			out := stderr.String()
			want := tc.want
			if want == "" {
				want = s.HTTP.URL()
			}
			if !strings.Contains(out, `msg="trail serving"`) || !strings.Contains(out, "public_url="+want+" ") {
				t.Errorf("the start log does not name the public URL %s:\n%s", want, out)
			}
			warned := strings.Contains(out, `level=WARN msg="links point at a wildcard address"`) && strings.Contains(out, "\nWARNING: --addr "+tc.addr+" is a wildcard address")
			if warned != tc.warn {
				t.Errorf("warned %v, want %v:\n%s", warned, tc.warn, out)
			}
		})
	}
	t.Run("BadPublicURL", func(t *testing.T) {
		t.Parallel()
		for _, u := range []string{"trail.example.com", "ftp://trail.example.com", "https://", "https://trail.example.com/?a=b", "https://u:p@trail.example.com"} {
			s := &Server{stderr: io.Discard, stdout: io.Discard}
			s.dataDir, s.Addr, s.PublicURL, s.LogLevel, s.LogFormat = t.TempDir(), "127.0.0.1:0", u, "info", "text"
			err := s.Open(context.Background())
			s.Close()
			if err == nil || !strings.Contains(err.Error(), "--public-url") {
				t.Errorf("--public-url %q: %v", u, err)
			}
		}
	})
}
