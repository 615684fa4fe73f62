package trail_test

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/storetest"
)

// TestRootImportsOnlyStdlib enforces the layering of STYLE.md: the root
// package is the vocabulary and imports nothing outside the standard
// library.
func TestRootImportsOnlyStdlib(t *testing.T) {
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			if first := strings.Split(path, "/")[0]; strings.Contains(first, ".") {
				t.Errorf("%s imports %s: the root package may import only the standard library", f, path)
			}
		}
	}
}

func TestEventInput_Validate(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	valid := func() *trail.EventInput {
		return &trail.EventInput{Action: "user.signed_in", OccurredAt: now.Add(-time.Minute),
			Actor: trail.Actor{ID: "u", Type: "user"}, Targets: []trail.Target{{ID: "t", Type: "team"}},
			Context: trail.EventContext{Location: "1.2.3.4"}}
	}
	tests := []struct {
		name   string
		mutate func(*trail.EventInput)
		path   string
	}{
		{"OK", func(*trail.EventInput) {}, ""},
		{"FutureWithinSkew", func(e *trail.EventInput) { e.OccurredAt = now.Add(4 * time.Minute) }, ""},
		{"Future", func(e *trail.EventInput) { e.OccurredAt = now.Add(5*time.Minute + time.Second) }, "/occurred_at"},
		{"Retention", func(e *trail.EventInput) { e.OccurredAt = now.Add(-31 * 24 * time.Hour) }, "/occurred_at"},
		{"ActionUnicode", func(e *trail.EventInput) { e.Action = "ünïcode" }, "/action"},
		{"MaxTargets", func(e *trail.EventInput) { e.Targets = make([]trail.Target, 50); fill(e.Targets) }, ""},
		{"TooManyTargets", func(e *trail.EventInput) { e.Targets = make([]trail.Target, 51); fill(e.Targets) }, "/targets"},
		{"MetadataKey40", func(e *trail.EventInput) { e.Metadata = trail.Metadata{strings.Repeat("k", 40): "v"} }, ""},
		{"MetadataValue500Runes", func(e *trail.EventInput) { e.Metadata = trail.Metadata{"k": strings.Repeat("é", 500)} }, ""},
		{"MetadataValue501Runes", func(e *trail.EventInput) { e.Metadata = trail.Metadata{"k": strings.Repeat("é", 501)} }, "/metadata/k"},
		{"MetadataFloat", func(e *trail.EventInput) { e.Metadata = trail.Metadata{"k": []int{1}} }, "/metadata/k"},
		{"MetadataMaxSafe", func(e *trail.EventInput) { e.Metadata = trail.Metadata{"k": int64(1<<53 - 1)} }, ""},
		{"MetadataInt64Unsafe", func(e *trail.EventInput) { e.Metadata = trail.Metadata{"k": int64(1<<53 + 1)} }, "/metadata/k"},
		{"MetadataNumberUnsafe", func(e *trail.EventInput) { e.Metadata = trail.Metadata{"k": json.Number("-9007199254740993")} }, "/metadata/k"},
		{"MetadataFloatUnsafe", func(e *trail.EventInput) { e.Metadata = trail.Metadata{"k": 1e16} }, "/metadata/k"},
		{"ActorNameInvalidUTF8", func(e *trail.EventInput) { e.Actor.Name = "Ann \xff" }, "/actor/name"},
		{"TargetIDSurrogate", func(e *trail.EventInput) { e.Targets[0].ID = "t\xed\xa0\x80" }, "/targets/0/id"},
		{"LocationInvalidUTF8", func(e *trail.EventInput) { e.Context.Location = "\xc3" }, "/context/location"},
		{"MetadataValueInvalidUTF8", func(e *trail.EventInput) { e.Metadata = trail.Metadata{"k": "\xfe"} }, "/metadata/k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid()
			tt.mutate(e)
			ps := e.Validate(now, 30)
			if tt.path == "" && len(ps) > 0 {
				t.Fatalf("unexpected problems %v", ps)
			}
			if tt.path != "" && (len(ps) == 0 || ps[0].Path != tt.path) {
				t.Fatalf("problems %v, want %s", ps, tt.path)
			}
		})
	}
}

func fill(ts []trail.Target) {
	for i := range ts {
		ts[i] = trail.Target{ID: "t", Type: "x"}
	}
}

func TestEventInput_DedupeKey(t *testing.T) {
	a := &trail.EventInput{Action: "a", Metadata: trail.Metadata{"x": "1", "y": "2"}}
	b := &trail.EventInput{Action: "a", Metadata: trail.Metadata{"y": "2", "x": "1"}}
	if a.DedupeKey("org") != b.DedupeKey("org") {
		t.Fatal("key order must not matter")
	}
	if a.DedupeKey("org") == a.DedupeKey("org2") {
		t.Fatal("keys are per organization")
	}
	a.IdempotencyKey = "k"
	if a.DedupeKey("org") == b.DedupeKey("org") {
		t.Fatal("an idempotency key changes the hash")
	}
}

// TestEncodedInput: the de-duplication key and the stored JSON that
// EncodedInput builds from parts are byte for byte what encoding/json
// makes of the whole input and the whole stored event, so that keys stay
// the same across versions and stored events are canonical JSON output.
func TestEncodedInput(t *testing.T) {
	hostile := []string{"", "<script>&amp;</script>", "line\u2028sep\u2029", "quote\" back\\slash", "tab\tnl\n", "Ünïcödé 東京 🙂", "\x00\x1f", "bad utf8 \xff"}
	var inputs []*trail.EventInput
	for n := 0; n < 40; n++ {
		in := storetest.NewEvent(n)
		inputs = append(inputs, in)
	}
	for i, h := range hostile {
		inputs = append(inputs, &trail.EventInput{
			Action: "a.b", Version: i % 3, OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, i*111111111, time.UTC),
			Actor:    trail.Actor{ID: h, Type: "user", Name: h, Metadata: trail.Metadata{"k": h, "n": json.Number("12.5"), "b": false}},
			Targets:  []trail.Target{{ID: h, Type: h}, {ID: "x", Type: "y", Metadata: trail.Metadata{h: 1.5}}},
			Context:  trail.EventContext{Location: h, UserAgent: h},
			Metadata: trail.Metadata{"z": h, "a": true, "m": 3},
		})
	}
	inputs = append(inputs, &trail.EventInput{Action: "no.targets", Metadata: trail.Metadata{}})
	// Not normalized: a zone other than UTC.
	paris := &trail.EventInput{Action: "a.tz", OccurredAt: time.Date(2026, 3, 1, 10, 0, 0, 5, time.FixedZone("CET", 3600))}
	if got, want := string(paris.Encode().JSON()), mustJSON(t, paris); got != want {
		t.Fatalf("not normalized input:\n got  %s\n want %s", got, want)
	}
	if got, want := string(paris.Encode().StoredJSON("01ID", "org", 1, time.Unix(0, 0))), mustJSON(t, paris.Stored("01ID", "org", 1, time.Unix(0, 0))); got != want {
		t.Fatalf("not normalized stored form:\n got  %s\n want %s", got, want)
	}
	received := time.Date(2026, 11, 27, 18, 0, 0, 123456789, time.UTC)
	for i, in := range inputs {
		in.Normalize()
		in.Version = i % 3 // 0 too: the key of an input without a version
		want, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		enc := in.Encode()
		if got := enc.JSON(); string(got) != string(want) {
			t.Fatalf("input %d:\n got  %s\n want %s", i, got, want)
		}
		if i%3 == 0 {
			in.Version = 1
			enc = in.Encode()
		}
		want, _ = json.Marshal(in.Stored("01ID", "org_x<&>", int64(i)*1000, received))
		if got := enc.StoredJSON("01ID", "org_x<&>", int64(i)*1000, received); string(got) != string(want) {
			t.Fatalf("stored %d:\n got  %s\n want %s", i, got, want)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestValidateMetadata_Numbers: only finite JSON numbers are numbers.
func TestValidateMetadata_Numbers(t *testing.T) {
	for v, ok := range map[any]bool{
		json.Number("12.5"): true, json.Number("-3e2"): true, 7: true, 1.5: true,
		json.Number("9007199254740991"): true, json.Number("9007199254740993"): false, json.Number("1e300"): false,
		json.Number("NaN"): false, json.Number("Inf"): false, json.Number("0x1p4"): false, json.Number("1e999"): false,
		math.NaN(): false, math.Inf(1): false,
	} {
		var ps []trail.Problem
		trail.ValidateMetadata(&ps, "/metadata", trail.Metadata{"n": v})
		if (len(ps) == 0) != ok {
			t.Errorf("%v: problems %v, want ok=%v", v, ps, ok)
		}
	}
}

func TestAPIKey_ValidatePermissions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		org   string
		perms []trail.Permission
		ok    bool
	}{
		{"", []trail.Permission{trail.PermMetrics}, true},
		{"", []trail.Permission{trail.PermAdmin, trail.PermMetrics}, true},
		{"org_a", []trail.Permission{trail.PermAdmin}, true},
		{"org_a", []trail.Permission{trail.PermEventsRead, trail.PermMetrics}, false},
		{"", []trail.Permission{"metrics:read"}, false},
		{"org_a", []trail.Permission{"root"}, false},
	} {
		k := &trail.APIKey{OrganizationID: tc.org, Permissions: tc.perms}
		if err := k.ValidatePermissions(); (err == nil) != tc.ok || err != nil && trail.ErrorCode(err) != trail.EINVALID {
			t.Errorf("%q %v: %v", tc.org, tc.perms, err)
		}
	}
}

func TestAPIKey_CanInstance(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		k    trail.APIKey
		want bool
	}{
		{trail.APIKey{Permissions: []trail.Permission{trail.PermAdmin}}, true},
		{trail.APIKey{Permissions: []trail.Permission{trail.PermMetrics}}, true},
		{trail.APIKey{Permissions: []trail.Permission{trail.PermStreams, trail.PermKeys}}, false},
		{trail.APIKey{OrganizationID: "org_a", Permissions: []trail.Permission{trail.PermAdmin}}, false},
	} {
		if got := tc.k.CanInstance(trail.PermMetrics); got != tc.want {
			t.Errorf("%+v: CanInstance(metrics) = %v", tc.k, got)
		}
	}
}

// TestExport_FileName: a download is named by its organization and
// period, whole days as dates with the last one included, and nothing
// of a hostile organization name reaches the file name.
func TestExport_FileName(t *testing.T) {
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return &v
	}
	created := *at("2026-12-04T10:00:00Z")
	for _, tc := range []struct {
		org        string
		start, end *time.Time
		format     string
		gzip       bool
		want       string
	}{
		{"Acme Corp", at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"), trail.ExportCSV, false, "acme-corp_audit-log_2026-11-01_to_2026-11-30.csv"},
		{"Acme Corp", at("2026-11-01T00:00:00Z"), at("2026-11-02T00:00:00Z"), trail.ExportNDJSON, true, "acme-corp_audit-log_2026-11-01_to_2026-11-01.ndjson.gz"},
		{"Zürich AG", at("2026-11-01T08:00:00Z"), at("2026-11-02T08:00:00Z"), trail.ExportCSV, false, "z-rich-ag_audit-log_2026-11-01T0800Z_to_2026-11-02T0800Z.csv"},
		{`"; filename=../../etc/passwd`, nil, at("2026-11-02T00:00:00Z"), trail.ExportCSV, false, "filename-etc-passwd_audit-log_beginning_to_2026-11-01.csv"},
		{"日本", nil, nil, trail.ExportCSV, false, "org-01_audit-log_beginning_to_2026-12-04T1000Z.csv"},
	} {
		ex := &trail.Export{OrganizationID: "org_01", Format: tc.format, Gzip: tc.gzip, CreatedAt: created,
			Filter: trail.EventFilter{RangeStart: tc.start, RangeEnd: tc.end}}
		if got := ex.FileName(tc.org); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.org, got, tc.want)
		}
	}
	long := (&trail.Export{OrganizationID: "o", Format: "csv", CreatedAt: created}).FileName(strings.Repeat("a", 300))
	if len(long) > 120 {
		t.Errorf("a long name makes a %d-byte file name", len(long))
	}
}
