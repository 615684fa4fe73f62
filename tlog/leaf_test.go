package tlog_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/demo"
	"github.com/trail-audit/trail/tlog"
)

// TestLeafHash checks the encoder the drivers use when they store an
// event (trail.EncodedInput.LeafHash, trail.Event.LeafHash) against a
// general RFC 8785 implementation applied to the stored JSON, on the
// catalogue's events and on values chosen to break a canonicalizer.
func TestLeafHash(t *testing.T) {
	catalog, err := demo.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	inputs := demo.Events(catalog, 2000, time.Now())
	hostile := []any{
		json.Number("1.0"), json.Number("1e3"), json.Number("-0"), json.Number("0.0000001"), json.Number("1e21"),
		json.Number("123456789012345678901234567890"), json.Number("1E-7"), json.Number("-1.5e+300"), json.Number("0.1"),
		json.Number("9007199254740993"), json.Number("5e-324"), 3.0, 1e21, 1e-7, int64(1) << 60, -7, true, false,
		"<script>&amp;</script>", "line\nbreak\ttab\r\u0001\u001f\u007f", "quote\" back\\slash /", "\u2028\u2029",
		"emoji 🎉 and 𝄞", "e\u0301 é", "\ufeffBOM", "日本語", "", "invalid \xff\xfe UTF-8 \xed\xa0\x80",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		in := demo.Events(catalog, 1, time.Now())[0]
		md := trail.Metadata{}
		for j := 0; j < 1+rng.IntN(8); j++ {
			key := []string{"a", "B", "_x", "-y", "z9", "A1", "aa", "a-", "a_", "Z"}[rng.IntN(10)] + fmt.Sprint(rng.IntN(3))
			md[key] = hostile[rng.IntN(len(hostile))]
		}
		in.Metadata = md
		in.Actor.Name = fmt.Sprint(hostile[rng.IntN(len(hostile))])
		in.Context.UserAgent = fmt.Sprint(hostile[rng.IntN(len(hostile))])
		in.Targets[0].Metadata = trail.Metadata{"k": hostile[rng.IntN(len(hostile))]}
		inputs = append(inputs, in)
	}
	received := time.Date(2026, 11, 27, 12, 0, 0, 123456789, time.UTC)
	for i, in := range inputs {
		in.Normalize()
		enc := in.Encode()
		id, org := fmt.Sprintf("01JD%022d", i), "org_test"
		data := enc.StoredJSON(id, org, int64(i), received)
		if len(in.Validate(received, 0)) == 0 {
			if p, n := tlog.NonCanonicalNumber(data); p != "" {
				t.Fatalf("event %d: an accepted number %s at %s is stored in another form than its leaf hash covers\n%s", i, n, p, data)
			}
		}
		want, err := tlog.LeafHashJSON(data)
		if err != nil {
			t.Fatal(err)
		}
		if got := enc.LeafHash(id, org, received); got != want {
			t.Fatalf("event %d: EncodedInput.LeafHash %x, JCS of the stored JSON %x\n%s", i, got, want, data)
		}
		var ev trail.Event
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		if got := ev.LeafHash(); got != want {
			t.Fatalf("event %d: Event.LeafHash %x, want %x\n%s", i, got, want, data)
		}
		// The index is not part of the leaf; every other field is.
		ev.Index++
		if got := ev.LeafHash(); got != want {
			t.Fatal("the index changed the leaf hash")
		}
		ev.Context.Location += "x"
		if ev.LeafHash() == want {
			t.Fatal("a changed location kept the leaf hash")
		}
	}
}

// TestNonCanonicalNumber: fsck's warning finds numbers stored in another
// form than RFC 8785 writes them, wherever they are.
func TestNonCanonicalNumber(t *testing.T) {
	for doc, want := range map[string]string{
		`{"metadata":{"a":1,"b":0.5,"c":-3,"d":1e-7,"e":1e+21}}`:       "",
		`{"metadata":{"a":1.0}}`:                                       "/metadata/a",
		`{"actor":{"metadata":{"x":1E3}}}`:                             "/actor/metadata/x",
		`{"targets":[{"id":"t"},{"metadata":{"n":9007199254740993}}]}`: "/targets/1/metadata/n",
		`{"metadata":{"a/b":-0}}`:                                      "/metadata/a~1b",
	} {
		if got, _ := tlog.NonCanonicalNumber([]byte(doc)); got != want {
			t.Errorf("%s: %q, want %q", doc, got, want)
		}
	}
}
