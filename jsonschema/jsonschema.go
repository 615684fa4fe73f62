// Package jsonschema validates events against the JSON Schemas (Draft
// 2020-12) of their action's schema version, with
// github.com/santhosh-tekuri/jsonschema/v6. Schema versions are immutable,
// so compiled schemas are cached for the life of the process.
//
//	v := jsonschema.NewValidator(schemas)
//	problems, err := v.ValidateEvent(ctx, in)
package jsonschema

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	js "github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/trail-audit/trail"
)

// NegativeCacheTTL is how long "this action has no schema" is remembered.
const NegativeCacheTTL = 2 * time.Second

// Validator checks events against their schema version. It is safe for
// concurrent use.
type Validator struct {
	Schemas trail.SchemaService
	// RequireSchemas rejects events of actions without any schema.
	RequireSchemas bool
	Now            func() time.Time

	mu       sync.Mutex // mu guards compiled, noSchema and forgets
	compiled map[schemaKey]*compiled
	noSchema map[string]time.Time
	forgets  uint64 // counts Forget calls: a lookup that raced one caches nothing negative
}

type schemaKey struct {
	action  string
	version int
}

type compiled struct {
	targets  map[string]*js.Schema // type → metadata schema (nil: any metadata)
	actor    *js.Schema
	metadata *js.Schema
}

// NewValidator returns a Validator reading schemas from s.
func NewValidator(s trail.SchemaService) *Validator {
	return &Validator{Schemas: s, Now: time.Now, compiled: map[schemaKey]*compiled{}, noSchema: map[string]time.Time{}}
}

// ValidateEvent returns the schema problems of in, with JSON pointers into
// the event. An error means the schema could not be read.
func (v *Validator) ValidateEvent(ctx context.Context, in *trail.EventInput) ([]trail.Problem, error) {
	version := in.Version
	if version == 0 {
		version = 1
	}
	c, err := v.lookup(ctx, in.Action, version)
	if err != nil {
		return nil, err
	}
	if c == nil {
		if v.RequireSchemas {
			return []trail.Problem{{Path: "/action", Message: fmt.Sprintf("action %q has no schema, and this instance requires one", in.Action)}}, nil
		}
		return nil, nil
	}
	if c.targets == nil { // the action has schemas, but not this version
		return []trail.Problem{{Path: "/version", Message: fmt.Sprintf("action %q has no schema version %d", in.Action, version)}}, nil
	}
	var ps []trail.Problem
	for i, t := range in.Targets {
		sch, ok := c.targets[t.Type]
		if !ok {
			ps = append(ps, trail.Problem{Path: "/targets/" + strconv.Itoa(i) + "/type",
				Message: fmt.Sprintf("target type %q is not allowed by version %d of %q", t.Type, version, in.Action)})
			continue
		}
		ps = append(ps, validate(sch, "/targets/"+strconv.Itoa(i)+"/metadata", t.Metadata)...)
	}
	ps = append(ps, validate(c.actor, "/actor/metadata", in.Actor.Metadata)...)
	ps = append(ps, validate(c.metadata, "/metadata", in.Metadata)...)
	return ps, nil
}

// lookup returns the compiled schema, nil when the action has no schema,
// or a compiled value with nil targets when only the version is missing.
func (v *Validator) lookup(ctx context.Context, action string, version int) (*compiled, error) {
	k := schemaKey{action, version}
	v.mu.Lock()
	c, ok := v.compiled[k]
	until, negative := v.noSchema[action]
	gen := v.forgets
	v.mu.Unlock()
	if ok {
		return c, nil
	}
	if negative && v.Now().Before(until) {
		return nil, nil
	}
	s, err := v.Schemas.FindSchema(ctx, action, version)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		has, err := v.Schemas.HasSchemas(ctx, action)
		if err != nil {
			return nil, err
		}
		if has {
			return &compiled{}, nil
		}
		v.mu.Lock()
		if v.forgets == gen {
			v.noSchema[action] = v.Now().Add(NegativeCacheTTL)
		}
		v.mu.Unlock()
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	c, ps := compile(s)
	if len(ps) > 0 {
		return nil, fmt.Errorf("stored schema %s v%d does not compile: %s", action, version, ps[0].Message)
	}
	v.mu.Lock()
	v.compiled[k] = c
	delete(v.noSchema, action)
	v.mu.Unlock()
	return c, nil
}

// Forget drops the negative cache entry of an action, so that a schema
// created on this node applies at once.
func (v *Validator) Forget(action string) {
	v.mu.Lock()
	delete(v.noSchema, action)
	v.forgets++
	v.mu.Unlock()
}

// Check reports the problems of a schema about to be created: every
// metadata document must be a valid JSON Schema, and target types must be
// present and distinct. Paths point into the request body.
func Check(s *trail.Schema) []trail.Problem {
	_, ps := compile(s)
	return ps
}

// compile compiles every JSON Schema of s.
func compile(s *trail.Schema) (*compiled, []trail.Problem) {
	var ps []trail.Problem
	c := &compiled{targets: map[string]*js.Schema{}}
	if len(s.Targets) == 0 {
		ps = append(ps, trail.Problem{Path: "/targets", Message: "must contain at least 1 target type"})
	}
	for i, t := range s.Targets {
		p := "/targets/" + strconv.Itoa(i)
		if t.Type == "" || len(t.Type) > trail.MaxActorTypeLength {
			ps = append(ps, trail.Problem{Path: p + "/type", Message: "must be 1 to 64 characters"})
			continue
		}
		if _, dup := c.targets[t.Type]; dup {
			ps = append(ps, trail.Problem{Path: p + "/type", Message: fmt.Sprintf("target type %q is listed twice", t.Type)})
			continue
		}
		sch, err := compileOne(t.Metadata)
		if err != nil {
			ps = append(ps, trail.Problem{Path: p + "/metadata", Message: err.Error()})
		}
		c.targets[t.Type] = sch
	}
	if s.Actor != nil {
		sch, err := compileOne(s.Actor.Metadata)
		if err != nil {
			ps = append(ps, trail.Problem{Path: "/actor/metadata", Message: err.Error()})
		}
		c.actor = sch
	}
	sch, err := compileOne(s.Metadata)
	if err != nil {
		ps = append(ps, trail.Problem{Path: "/metadata", Message: err.Error()})
	}
	c.metadata = sch
	return c, ps
}

// noLoader refuses every external reference: a schema must be
// self-contained, and Trail never reads files or URLs on a schema's word.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external references are not allowed: %s", url)
}

func compileOne(raw json.RawMessage) (*js.Schema, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	doc, err := js.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("is not JSON: %v", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		if _, ok := doc.(bool); !ok {
			return nil, errors.New("must be a JSON Schema object")
		}
	}
	c := js.NewCompiler()
	c.DefaultDraft(js.Draft2020)
	c.UseLoader(noLoader{})
	const url = "urn:trail:schema"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("is not a valid JSON Schema: %v", err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("is not a valid JSON Schema (Draft 2020-12): %v", err)
	}
	return sch, nil
}

var printer = message.NewPrinter(language.English)

func validate(sch *js.Schema, path string, md trail.Metadata) []trail.Problem {
	if sch == nil {
		return nil
	}
	var inst any = map[string]any(md)
	if md == nil {
		inst = map[string]any{}
	}
	err := sch.Validate(inst)
	if err == nil {
		return nil
	}
	var verr *js.ValidationError
	if !errors.As(err, &verr) {
		return []trail.Problem{{Path: path, Message: err.Error()}}
	}
	var ps []trail.Problem
	var walk func(e *js.ValidationError)
	walk = func(e *js.ValidationError) {
		if len(e.Causes) == 0 {
			p := path
			for _, tok := range e.InstanceLocation {
				p += "/" + trail.EscapePointer(tok)
			}
			ps = append(ps, trail.Problem{Path: p, Message: e.ErrorKind.LocalizedString(printer)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(verr)
	return ps
}
