// Package demo creates the demo organization org_demo: the schemas of an
// incident-management product's audit event catalogue (embedded) and a
// realistic history of events over the last 90 days.
package demo

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/trail-audit/trail"
)

//go:embed incident-catalog.json
var catalogJSON []byte

// DefaultEvents is how many events the demo history holds.
const DefaultEvents = 60000

// CatalogEntry is one event type of the catalogue.
type CatalogEntry struct {
	Action       string   `json:"action"`
	Version      int      `json:"version"`
	TargetTypes  []string `json:"target_types"`
	MetadataKeys []string `json:"metadata_keys"`
}

// Catalog returns the embedded catalogue, where every *.updated event
// type says what it changed (withChanges).
func Catalog() ([]CatalogEntry, error) {
	var c []CatalogEntry
	if err := json.Unmarshal(catalogJSON, &c); err != nil {
		return nil, fmt.Errorf("decode catalogue: %w", err)
	}
	return withChanges(c), nil
}

// changedFields are fields a *.updated event may change, with the values
// they take; every such event changes the name or keeps it, and one of
// the others.
var changedFields = map[string][]string{
	"priority":      {"P1", "P2", "P3", "P4"},
	"severity":      {"minor", "major", "critical"},
	"visibility":    {"public", "private"},
	"delay_minutes": {"5", "10", "15", "30"},
	"owner_team":    {"Platform", "Payments", "Security", "Data", "Mobile"},
}

var changedOrder = []string{"priority", "severity", "visibility", "delay_minutes", "owner_team"}

// withChanges gives each *.updated entry of the catalogue that has no
// before/after keys of its own the pair before_name/after_name and one
// more pair (SPEC §9's "what changed"); its schema declares them.
func withChanges(c []CatalogEntry) []CatalogEntry {
	for i, e := range c {
		if !strings.HasSuffix(e.Action, ".updated") {
			continue
		}
		paired := false
		for _, k := range e.MetadataKeys {
			paired = paired || strings.HasPrefix(k, "before_") || strings.HasPrefix(k, "after_") || strings.HasPrefix(k, "previous_")
		}
		if paired {
			continue
		}
		f := changedOrder[len(e.Action)%len(changedOrder)]
		keys := append(slices.Clone(e.MetadataKeys), "before_name", "after_name", "before_"+f, "after_"+f)
		c[i].MetadataKeys = keys
	}
	return c
}

// sampleChange fills a before/after pair of md with realistic values: a
// change most of the time, the same value sometimes.
func sampleChange(rng *rand.Rand, md trail.Metadata) {
	for _, k := range slices.Sorted(maps.Keys(md)) { // in order: the demo is the same every time
		field, ok := strings.CutPrefix(k, "before_")
		if !ok {
			continue
		}
		var values []string
		if field == "name" {
			for range 2 {
				values = append(values, adjectives[rng.IntN(len(adjectives))]+" "+nouns[rng.IntN(len(nouns))])
			}
		} else if values = changedFields[field]; values == nil {
			continue
		}
		before := values[rng.IntN(len(values))]
		after := before
		if rng.IntN(5) > 0 || field != "name" {
			for after == before {
				after = values[rng.IntN(len(values))]
				if field == "name" {
					after = adjectives[rng.IntN(len(adjectives))] + " " + nouns[rng.IntN(len(nouns))]
				}
			}
		}
		md[k], md["after_"+field] = before, after
	}
}

// metadataKey turns a catalogue key into a valid metadata key and its JSON
// Schema: "outcome(granted|denied)" is an enum, "after_values[]" a list
// written as one string (metadata has no arrays).
func metadataKey(raw string) (string, map[string]any) {
	if i := strings.IndexByte(raw, '('); i > 0 && strings.HasSuffix(raw, ")") {
		values := strings.Split(raw[i+1:len(raw)-1], "|")
		return raw[:i], map[string]any{"type": "string", "enum": values}
	}
	key := strings.TrimSuffix(raw, "[]")
	switch {
	case key == "enabled" || key == "write" || strings.HasPrefix(key, "run_on_") || strings.HasPrefix(key, "is_"):
		return key, map[string]any{"type": "boolean"}
	case strings.HasSuffix(key, "_count") || key == "measure":
		return key, map[string]any{"type": "number"}
	case strings.HasSuffix(key, "_at"):
		return key, map[string]any{"type": "string", "format": "date-time"}
	}
	return key, map[string]any{"type": "string", "maxLength": 500}
}

// Schemas returns the schema versions of the catalogue: version 1 of every
// action (its target types), and for actions at version 2 a second version
// that also constrains the metadata.
func Schemas(c []CatalogEntry) []*trail.Schema {
	var out []*trail.Schema
	for _, e := range c {
		var targets []trail.SchemaTarget
		for _, t := range e.TargetTypes {
			targets = append(targets, trail.SchemaTarget{Type: t})
		}
		props := map[string]any{}
		for _, k := range e.MetadataKeys {
			name, sch := metadataKey(k)
			props[name] = sch
		}
		md, _ := json.Marshal(map[string]any{"type": "object", "properties": props, "additionalProperties": false})
		v1 := &trail.Schema{Action: e.Action, Targets: targets}
		if e.Version < 2 {
			v1.Metadata = md
		}
		out = append(out, v1)
		if e.Version >= 2 {
			out = append(out, &trail.Schema{Action: e.Action, Targets: targets, Metadata: md})
		}
	}
	return out
}

type person struct{ id, typ, name, email string }

var (
	firstNames = []string{"Ada", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Radia", "Guido", "Frances",
		"Edsger", "Sophie", "Tim", "Hedy", "Alan", "Katherine", "Donald", "Leslie", "Yukihiro", "Anita", "Rob", "Joan",
		"Niklaus", "Shafi", "Bjarne", "Lynn", "Whitfield", "Adele", "John", "Mary"}
	lastNames = []string{"Lovelace", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Perlman",
		"van Rossum", "Allen", "Dijkstra", "Wilson", "Berners-Lee", "Lamarr", "Turing", "Johnson", "Knuth", "Lamport",
		"Matsumoto", "Borg", "Pike", "Clarke", "Wirth", "Goldwasser", "Stroustrup", "Conway", "Diffie", "Goldberg"}
	places = []string{"London, GB", "Dublin, IE", "New York, US", "San Francisco, US", "Berlin, DE", "Amsterdam, NL",
		"Toronto, CA", "Sydney, AU", "Singapore, SG", "Paris, FR"}
	userAgents = []string{
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
		"Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"incident-io-mobile/5.12.0 (Android 14; Pixel 8)",
		"Slack-Integration/1.0 (+https://api.slack.com/robots)",
		"terraform-provider-incident/5.3.1",
		"Go-http-client/2.0",
	}
	adjectives = []string{"Critical", "Primary", "Backup", "EU", "US", "Payments", "Platform", "Database", "Frontend", "Security", "Mobile", "Data"}
	nouns      = []string{"on-call", "escalation", "alerts", "rotation", "incidents", "responders", "status page", "runbook"}
)

// Events returns n events of the catalogue spread over the 90 days before
// now, oldest first, from a fixed seed.
func Events(c []CatalogEntry, n int, now time.Time) []*trail.EventInput {
	rng := rand.New(rand.NewPCG(2023, 4))
	var people []person
	for i := 0; i < 64; i++ {
		f, l := firstNames[rng.IntN(len(firstNames))], lastNames[rng.IntN(len(lastNames))]
		people = append(people, person{fmt.Sprintf("01H%sU%04d", strings.ToUpper(f[:2]), i), "user", f + " " + l,
			strings.ToLower(f) + "." + strings.ToLower(strings.ReplaceAll(l, " ", "")) + "@example.com"})
	}
	var robots []person
	for i, name := range []string{"Terraform", "Backstage sync", "CI deploy bot", "Data warehouse export", "PagerDuty migration"} {
		robots = append(robots, person{fmt.Sprintf("01HAPIKEY%04d", i), "api_key", name, ""})
	}
	for i, name := range []string{"Auto-assign lead", "Page on-call for P1", "Post to #incidents", "Create Jira ticket", "Escalate after 15m", "Nudge for updates"} {
		robots = append(robots, person{fmt.Sprintf("01HWORKFLOW%04d", i), "workflow", name, ""})
	}
	robots = append(robots, person{"system", "system", "incident.io", ""})
	ips := make([]string, 40)
	for i := range ips {
		ips[i] = fmt.Sprintf("%d.%d.%d.%d", []int{81, 86, 185, 203, 34, 52}[i%6], rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
	}
	// A pool of targets per type so that the same things change repeatedly.
	targetPool := map[string][]trail.Target{}
	target := func(typ string) trail.Target {
		pool := targetPool[typ]
		if len(pool) < 12 && (len(pool) == 0 || rng.IntN(4) == 0) {
			name := adjectives[rng.IntN(len(adjectives))] + " " + nouns[rng.IntN(len(nouns))]
			t := trail.Target{ID: fmt.Sprintf("01H%s%05d", strings.ToUpper(typ[:min(3, len(typ))]), len(pool)), Type: typ, Name: name}
			targetPool[typ] = append(pool, t)
			return t
		}
		return pool[rng.IntN(len(pool))]
	}
	// Times: weighted to working hours, sorted so the log reads in order.
	start := now.Add(-90 * 24 * time.Hour)
	times := make([]time.Time, n)
	for i := range times {
		t := start.Add(time.Duration(rng.Int64N(int64(90*24*time.Hour) - int64(time.Minute))))
		if h := t.Hour(); (h < 7 || h > 19) && rng.IntN(3) > 0 {
			t = t.Add(time.Duration(9+rng.IntN(8)-h) * time.Hour)
		}
		if t.Before(start) {
			t = start.Add(time.Duration(1+rng.IntN(3600)) * time.Second)
		}
		if t.After(now.Add(-time.Minute)) {
			t = now.Add(-time.Minute - time.Duration(rng.IntN(3600))*time.Second)
		}
		times[i] = t.UTC().Truncate(time.Millisecond)
	}
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	// Some actions are far more common than others.
	weights := make([]int, len(c))
	total := 0
	for i, e := range c {
		w := 1 + rng.IntN(4)
		if strings.HasSuffix(e.Action, ".updated") || strings.Contains(e.Action, "schedule") || strings.Contains(e.Action, "escalation") {
			w *= 6
		}
		weights[i] = w
		total += w
	}
	out := make([]*trail.EventInput, n)
	for i := range out {
		k := rng.IntN(total)
		var e CatalogEntry
		for j, w := range weights {
			if k < w {
				e = c[j]
				break
			}
			k -= w
		}
		var actor person
		var loc, ua string
		if rng.IntN(5) == 0 {
			actor = robots[rng.IntN(len(robots))]
			loc, ua = ips[rng.IntN(len(ips))], userAgents[5+rng.IntN(3)]
		} else {
			actor = people[rng.IntN(len(people))]
			if rng.IntN(3) == 0 {
				loc = places[rng.IntN(len(places))]
			} else {
				loc = ips[rng.IntN(len(ips))]
			}
			ua = userAgents[rng.IntN(5)]
		}
		in := &trail.EventInput{
			Action: e.Action, Version: max(1, e.Version), OccurredAt: times[i],
			Actor:   trail.Actor{ID: actor.id, Type: actor.typ, Name: actor.name},
			Context: trail.EventContext{Location: loc, UserAgent: ua},
		}
		if actor.email != "" {
			in.Actor.Metadata = trail.Metadata{"email": actor.email}
		}
		for _, tt := range e.TargetTypes {
			in.Targets = append(in.Targets, target(tt))
		}
		if len(e.MetadataKeys) > 0 {
			in.Metadata = trail.Metadata{}
			for _, raw := range e.MetadataKeys {
				name, sch := metadataKey(raw)
				in.Metadata[name] = sampleValue(rng, name, sch, times[i], people)
			}
			sampleChange(rng, in.Metadata)
		}
		out[i] = in
	}
	return out
}

func sampleValue(rng *rand.Rand, name string, sch map[string]any, at time.Time, people []person) any {
	if enum, ok := sch["enum"].([]string); ok {
		return enum[rng.IntN(len(enum))]
	}
	switch sch["type"] {
	case "boolean":
		return rng.IntN(2) == 0
	case "number":
		return json.Number(fmt.Sprint(rng.IntN(40)))
	}
	if sch["format"] == "date-time" {
		return at.Add(time.Duration(rng.IntN(72)) * time.Hour).Format(time.RFC3339)
	}
	switch {
	case strings.HasSuffix(name, "_user_ids"):
		return people[rng.IntN(len(people))].id + "," + people[rng.IntN(len(people))].id
	case strings.HasSuffix(name, "_user_names"):
		return people[rng.IntN(len(people))].name + ", " + people[rng.IntN(len(people))].name
	case strings.HasSuffix(name, "_ids") || strings.HasSuffix(name, "_id"):
		return fmt.Sprintf("01HX%08d", rng.IntN(1e8))
	case strings.HasSuffix(name, "_slug") || strings.HasSuffix(name, "_slugs"):
		return []string{"owner", "admin", "responder", "viewer", "engineering-manager"}[rng.IntN(5)]
	case name == "outcome":
		return []string{"granted", "denied"}[rng.IntN(2)]
	case name == "surface":
		return []string{"dashboard", "slack", "api", "mobile"}[rng.IntN(4)]
	}
	return []string{"all", "none", "team-only", "default", "custom", "enabled", "disabled"}[rng.IntN(7)]
}

// Validator checks events against schemas (jsonschema.Validator).
type Validator interface {
	ValidateEvent(ctx context.Context, in *trail.EventInput) ([]trail.Problem, error)
}

// Result reports what Load did.
type Result struct {
	Created bool // false: org_demo existed and was left alone
	Schemas int
	Events  int
}

// Load creates org_demo, the catalogue's schemas and n events, unless
// org_demo exists. Every event is validated against its schema first.
func Load(ctx context.Context, orgs trail.OrganizationService, schemas trail.SchemaService, events trail.EventService, v Validator, n int, now time.Time) (Result, error) {
	if _, err := orgs.FindOrganizationByID(ctx, trail.DemoOrganizationID); err == nil {
		return Result{}, nil
	} else if trail.ErrorCode(err) != trail.ENOTFOUND {
		return Result{}, err
	}
	c, err := Catalog()
	if err != nil {
		return Result{}, err
	}
	res := Result{Created: true}
	existing := map[string]bool{}
	for _, e := range c {
		// An action that has schemas already (from an interrupted demo
		// load, or the operator's own) keeps them.
		ok, err := schemas.HasSchemas(ctx, e.Action)
		if err != nil {
			return res, err
		}
		existing[e.Action] = ok
	}
	for _, s := range Schemas(c) {
		if existing[s.Action] {
			continue
		}
		if err := schemas.CreateSchema(ctx, s); err != nil {
			return res, fmt.Errorf("create schema %s: %w", s.Action, err)
		}
		res.Schemas++
	}
	if err := orgs.CreateOrganization(ctx, &trail.Organization{ID: trail.DemoOrganizationID, Name: "Demo Corp"}); err != nil {
		return res, err
	}
	evs := Events(c, n, now)
	for i, in := range evs {
		if ps, err := v.ValidateEvent(ctx, in); err != nil {
			return res, err
		} else if len(ps) > 0 {
			return res, fmt.Errorf("demo event %d (%s) breaks its schema: %s %s", i, in.Action, ps[0].Path, ps[0].Message)
		}
	}
	for start := 0; start < len(evs); start += 5000 {
		chunk := evs[start:min(len(evs), start+5000)]
		results, err := events.AppendEvents(ctx, trail.DemoOrganizationID, chunk)
		if err != nil {
			return res, err
		}
		for _, r := range results {
			if r.Err != nil {
				return res, r.Err
			}
			res.Events++
		}
	}
	return res, nil
}
