package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/trail-audit/trail"
)

// getStatus fetches url with key ("" for none) and returns the status and
// body; a status of 0 means the server could not be reached.
func getStatus(t *testing.T, url, key string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe_MetricsAddr: --metrics-addr serves /metrics without a key on
// a listener of its own, shut down with serve, while the API's /metrics
// still needs one (issue 16, point 9).
func TestServe_MetricsAddr(t *testing.T) {
	t.Parallel()
	s := &Server{stderr: io.Discard, stdout: io.Discard}
	s.dataDir, s.Addr, s.MetricsAddr, s.LogLevel, s.LogFormat, s.AdminKey = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "info", "text", testAdminKey
	if err := s.Open(context.Background()); err != nil {
		s.Close()
		t.Fatal(err)
	}
	defer s.Close()
	const series = "# TYPE go_goroutines gauge"
	if code, body := getStatus(t, s.metricsURL, ""); code != 200 || !strings.Contains(body, series) {
		t.Fatalf("--metrics-addr without a key: %d %.300s", code, body)
	}
	if code, body := getStatus(t, s.HTTP.URL()+"/metrics", ""); code != 401 {
		t.Fatalf("the API's /metrics without a key: %d %.300s", code, body)
	}
	if code, body := getStatus(t, s.HTTP.URL()+"/metrics", testAdminKey); code != 200 || !strings.Contains(body, series) {
		t.Fatalf("the API's /metrics with the admin key: %d %.300s", code, body)
	}
	if code, _ := getStatus(t, strings.TrimSuffix(s.metricsURL, "/metrics")+"/audit_logs/events", testAdminKey); code != 404 {
		t.Fatalf("the metrics listener serves only /metrics: %d", code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if code, _ := getStatus(t, s.metricsURL, ""); code != 0 {
		t.Fatalf("the metrics listener answers after Close: %d", code)
	}
}

// TestServe_MetricsAddrOffByDefault: without --metrics-addr no listener
// of its own is opened.
func TestServe_MetricsAddrOffByDefault(t *testing.T) {
	t.Parallel()
	var m Main
	m.Stderr, m.Stdout, m.Getenv = io.Discard, io.Discard, func(string) string { return "" }
	s := m.newServer()
	fs := m.newFlagSet("serve", "")
	s.register(fs)
	if err := m.parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if s.MetricsAddr != "" {
		t.Fatalf("--metrics-addr defaults to %q", s.MetricsAddr)
	}
	m.Getenv = func(k string) string { return map[string]string{"TRAIL_METRICS_ADDR": "127.0.0.1:9999"}[k] }
	s = m.newServer()
	fs = m.newFlagSet("serve", "")
	s.register(fs)
	if err := m.parse(fs, nil); err != nil || s.MetricsAddr != "127.0.0.1:9999" {
		t.Fatalf("TRAIL_METRICS_ADDR: %q %v", s.MetricsAddr, err)
	}
}

// TestKeysUsage_ListsEveryPermission: trail keys -h names each permission.
func TestKeysUsage_ListsEveryPermission(t *testing.T) {
	t.Parallel()
	_, list, _ := strings.Cut(keysUsage, "Permissions:")
	listed := map[string]bool{}
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == '.' || r == ' ' || r == '\n' }) {
		listed[f] = true
	}
	for _, p := range trail.AllPermissions {
		if !listed[string(p)] {
			t.Errorf("trail keys -h does not list %s", p)
		}
	}
}

// TestServe_OrgRateLimitFlag: --org-rate-limit (TRAIL_ORG_RATE_LIMIT)
// defaults to the --rate-limit value; 0 turns it off.
func TestServe_OrgRateLimitFlag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want int
	}{
		{nil, nil, 6000},
		{nil, []string{"--rate-limit", "120"}, 120},
		{map[string]string{"TRAIL_ORG_RATE_LIMIT": "30"}, []string{"--rate-limit", "120"}, 30},
		{nil, []string{"--org-rate-limit", "0"}, 0},
	} {
		m := &Main{Stderr: io.Discard, Stdout: io.Discard, Getenv: func(k string) string { return tc.env[k] }}
		s := m.newServer()
		fs := m.newFlagSet("serve", "")
		s.register(fs)
		if err := m.parse(fs, tc.args); err != nil {
			t.Fatal(err)
		}
		s.dataDir, s.Addr, s.LogLevel, s.LogFormat, s.AdminKey = t.TempDir(), "127.0.0.1:0", "warn", "text", testAdminKey
		err := s.Open(context.Background())
		if err == nil && s.HTTP.OrgRateLimit != tc.want {
			err = fmt.Errorf("OrgRateLimit %d, want %d", s.HTTP.OrgRateLimit, tc.want)
		}
		s.Close()
		if err != nil {
			t.Errorf("%v %v: %v", tc.env, tc.args, err)
		}
	}
}
