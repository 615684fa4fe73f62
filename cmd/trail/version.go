package main

import (
	"fmt"
	"runtime/debug"
)

// Version, Commit and Date describe this build. make build sets them:
//
//	go build -ldflags "-X main.Version=$(git describe --tags --always --dirty) \
//		-X main.Commit=$(git rev-parse HEAD) -X main.Date=$(date -u +%Y-%m-%dT%H:%M:%SZ)" ./cmd/trail
//
// Those left empty come from what the go command records in the binary
// (debug.ReadBuildInfo): the main module's version, vcs.revision and
// vcs.time (the commit's time).
var (
	Version string
	Commit  string
	Date    string
)

// buildInfo is the version, commit and date of a binary.
type buildInfo struct {
	Version string // a module version, or "devel"
	Commit  string // a commit hash (+dirty when the tree was modified), or "unknown"
	Date    string // RFC 3339, or "unknown"
}

// String is what trail version prints.
func (b buildInfo) String() string {
	return fmt.Sprintf("trail %s\ncommit: %s\ndate:   %s\n", b.Version, b.Commit, b.Date)
}

// readBuildInfo returns this binary's version, commit and date.
func readBuildInfo() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return resolveBuildInfo(buildInfo{Version: Version, Commit: Commit, Date: Date}, bi)
}

// resolveBuildInfo fills the fields of ld (the -ldflags values) that are
// empty from bi, which is nil when the binary records nothing: the main
// module's version unless it is "(devel)", vcs.revision with "+dirty" when
// vcs.modified, and vcs.time. What neither gives is "devel" or "unknown".
func resolveBuildInfo(ld buildInfo, bi *debug.BuildInfo) buildInfo {
	b := ld
	if bi != nil {
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if b.Version == "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		if b.Commit == "" && settings["vcs.revision"] != "" {
			b.Commit = settings["vcs.revision"]
			if settings["vcs.modified"] == "true" {
				b.Commit += "+dirty"
			}
		}
		if b.Date == "" {
			b.Date = settings["vcs.time"]
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	if b.Date == "" {
		b.Date = "unknown"
	}
	return b
}

// version is the short version of this build, for the User-Agent and
// reports.
func version() string { return readBuildInfo().short() }

// short is the version, or devel and the commit's first 12 digits.
func (b buildInfo) short() string {
	if b.Version == "devel" && b.Commit != "unknown" {
		return "devel-" + b.Commit[:min(12, len(b.Commit))]
	}
	return b.Version
}

func (m *Main) runVersion(args []string) error {
	fs := m.newFlagSet("version", "Print the version of this binary, the commit it was built from and its build date\n"+
		"(set with -ldflags -X main.Version=… -X main.Commit=… -X main.Date=…, as make build does),\n"+
		"else the module version, commit and commit time that the go command recorded.")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version takes no arguments, not %q", fs.Arg(0))
	}
	fmt.Fprint(m.Stdout, readBuildInfo())
	return nil
}
