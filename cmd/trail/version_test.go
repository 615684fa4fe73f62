package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersion: the -ldflags values win; the go command's build
// information fills what they leave empty; what neither gives is devel or
// unknown.
func TestVersion(t *testing.T) {
	t.Parallel()
	recorded := &debug.BuildInfo{Main: debug.Module{Version: "v0.1.1-0.20261204120000-5fbce080e5dc"}, Settings: []debug.BuildSetting{
		{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "5fbce080e5dc265cf265a448ec69faa7f2fd57bd"},
		{Key: "vcs.time", Value: "2026-12-04T12:00:00Z"}, {Key: "vcs.modified", Value: "false"}}}
	modified := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "5fbce080e5dc265cf265a448ec69faa7f2fd57bd"}, {Key: "vcs.modified", Value: "true"}}}
	for _, tt := range []struct {
		name      string
		ld        buildInfo
		bi        *debug.BuildInfo
		want      buildInfo
		wantShort string
	}{
		{"Ldflags", buildInfo{"v0.2.0", "abc123", "2026-12-05T10:00:00Z"}, recorded,
			buildInfo{"v0.2.0", "abc123", "2026-12-05T10:00:00Z"}, "v0.2.0"},
		{"BuildInfo", buildInfo{}, recorded,
			buildInfo{"v0.1.1-0.20261204120000-5fbce080e5dc", "5fbce080e5dc265cf265a448ec69faa7f2fd57bd", "2026-12-04T12:00:00Z"}, "v0.1.1-0.20261204120000-5fbce080e5dc"},
		{"LdflagsVersionOnly", buildInfo{Version: "v0.2.0"}, recorded,
			buildInfo{"v0.2.0", "5fbce080e5dc265cf265a448ec69faa7f2fd57bd", "2026-12-04T12:00:00Z"}, "v0.2.0"},
		{"DevelModified", buildInfo{}, modified,
			buildInfo{"devel", "5fbce080e5dc265cf265a448ec69faa7f2fd57bd+dirty", "unknown"}, "devel-5fbce080e5dc"},
		{"Nothing", buildInfo{}, nil, buildInfo{"devel", "unknown", "unknown"}, "devel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := resolveBuildInfo(tt.ld, tt.bi)
			if got != tt.want {
				t.Fatalf("resolveBuildInfo = %+v, want %+v", got, tt.want)
			}
			if short := got.short(); short != tt.wantShort {
				t.Errorf("short = %q, want %q", short, tt.wantShort)
			}
		})
	}
}

// TestMain_Version: trail version prints the version, the commit and the
// date; a binary built with -ldflags -X prints those values.
func TestMain_Version(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if err := m.Run(context.Background(), []string{"version"}); err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^trail \S+\ncommit: \S+\ndate:   \S+\n$`).MatchString(out.String()) {
			t.Fatalf("trail version printed %q", out.String())
		}
	})
	t.Run("ErrArgument", func(t *testing.T) {
		t.Parallel()
		var out bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if err := m.Run(context.Background(), []string{"version", "now"}); err == nil || !strings.Contains(err.Error(), "no arguments") {
			t.Fatalf("trail version now: %v", err)
		}
	})
	t.Run("Ldflags", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds and runs the binary")
		}
		t.Parallel()
		bin := filepath.Join(t.TempDir(), "trail")
		ld := "-X main.Version=v9.8.7 -X main.Commit=0123456789abcdef -X main.Date=2026-12-05T10:11:12Z"
		if out, err := exec.Command("go", "build", "-ldflags", ld, "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(bin, "version").CombinedOutput()
		if err != nil {
			t.Fatalf("trail version: %v\n%s", err, out)
		}
		if want := "trail v9.8.7\ncommit: 0123456789abcdef\ndate:   2026-12-05T10:11:12Z\n"; string(out) != want {
			t.Fatalf("trail version printed %q, want %q", out, want)
		}
	})
}
