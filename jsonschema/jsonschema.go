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
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	js "github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/sync/singleflight"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/trail-audit/trail"
)

// NegativeCacheTTL is how long "this action has no schema" is remembered.
const NegativeCacheTTL = 2 * time.Second

// Limits of compiling (see also trail.MaxSchemaBytes and
// trail.MaxSchemaDepth, checked before anything is compiled).
const (
	// DefaultCompileTimeout is how long a Validator waits for a schema
	// to compile: a new schema that takes longer is refused as too
	// complex; events of a stored one get a 503 while it goes on
	// compiling (once).
	DefaultCompileTimeout = time.Second
	// MaxCompiles is how many JSON Schema documents a Validator compiles
	// at once, compiles whose callers stopped waiting included: the
	// compiler takes no context, so an abandoned compile runs to its end.
	MaxCompiles = 4
)

// Validator checks events against their schema version, and new schemas
// before they are stored. It is safe for concurrent use. Each schema
// version is compiled once (and cached): the events of a new version that
// arrive together wait for one compile. At most one compile of a given
// JSON Schema document runs at a time, and at most MaxCompiles in all.
type Validator struct {
	Schemas trail.SchemaService
	// RequireSchemas rejects events of actions without any schema.
	RequireSchemas bool
	Now            func() time.Time
	// CompileTimeout bounds the wait for a compile; zero means
	// DefaultCompileTimeout.
	CompileTimeout time.Duration

	flights   singleflight.Group // one load of a version, one compile of a document, at a time
	slots     chan struct{}      // holds a token per running compile
	onCompile func()             // called as each compile starts (tests)

	mu       sync.Mutex // mu guards compiled, noSchema, forgets and running
	compiled map[schemaKey]*compiled
	noSchema map[string]time.Time
	forgets  uint64 // counts Forget calls: a lookup that raced one caches nothing negative
	running  map[[sha256.Size]byte]bool
}

type schemaKey struct {
	action  string
	version int
}

type compiled struct {
	targets  map[string]*js.Schema // type → metadata schema (nil: any metadata)
	actor    *js.Schema
	metadata *js.Schema
	// err is why a stored version cannot be used (it never will be).
	err error
}

// NewValidator returns a Validator reading schemas from s.
func NewValidator(s trail.SchemaService) *Validator {
	return &Validator{Schemas: s, Now: time.Now, compiled: map[schemaKey]*compiled{}, noSchema: map[string]time.Time{},
		slots: make(chan struct{}, MaxCompiles), running: map[[sha256.Size]byte]bool{}}
}

func (v *Validator) compileTimeout() time.Duration {
	if v.CompileTimeout > 0 {
		return v.CompileTimeout
	}
	return DefaultCompileTimeout
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
// A version is loaded and compiled once, however many events of it
// arrive at once; when the compile outlasts CompileTimeout the callers
// get EUNAVAILABLE, and the compile goes on and caches its result.
func (v *Validator) lookup(ctx context.Context, action string, version int) (*compiled, error) {
	k := schemaKey{action, version}
	v.mu.Lock()
	c, ok := v.compiled[k]
	until, negative := v.noSchema[action]
	v.mu.Unlock()
	if ok {
		return c, c.err
	}
	if negative && v.Now().Before(until) {
		return nil, nil
	}
	ch := v.flights.DoChan("version\x00"+action+"\x00"+strconv.Itoa(version), func() (any, error) {
		// Not the first caller's cancellation: others wait on it too.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return v.load(ctx, k)
	})
	t := time.NewTimer(v.compileTimeout())
	defer t.Stop()
	select {
	case r := <-ch:
		c, _ := r.Val.(*compiled)
		return c, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, trail.Errorf(trail.EUNAVAILABLE, "The schema of %q version %d is still being compiled; try again.", action, version)
	}
}

// load reads and compiles a version, and caches it.
func (v *Validator) load(ctx context.Context, k schemaKey) (*compiled, error) {
	v.mu.Lock()
	c, ok := v.compiled[k] // cached by a flight that ended since the caller looked
	gen := v.forgets
	v.mu.Unlock()
	if ok {
		return c, c.err
	}
	s, err := v.Schemas.FindSchema(ctx, k.action, k.version)
	if trail.ErrorCode(err) == trail.ENOTFOUND {
		has, err := v.Schemas.HasSchemas(ctx, k.action)
		if err != nil {
			return nil, err
		}
		if has {
			return &compiled{}, nil
		}
		v.mu.Lock()
		if v.forgets == gen {
			v.noSchema[k.action] = v.Now().Add(NegativeCacheTTL)
		}
		v.mu.Unlock()
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	c, err = v.compile(s, 0)
	switch code := trail.ErrorCode(err); code {
	case "":
	case trail.EUNAVAILABLE:
		return nil, err // no compile could start: tried again with the next event
	case trail.ESCHEMATOOCOMPLEX:
		// Stored before the limits: its events are refused, not compiled again.
		c = &compiled{err: &trail.Error{Code: code, Message: fmt.Sprintf("The schema of %q version %d is too complex to use: %s",
			k.action, k.version, strings.TrimPrefix(trail.ErrorMessage(err), "Audit Log schema too complex: ")), Problems: trail.ErrorProblems(err)}}
	default:
		msg := err.Error()
		if ps := trail.ErrorProblems(err); len(ps) > 0 {
			msg = ps[0].Path + ": " + ps[0].Message
		}
		c = &compiled{err: fmt.Errorf("stored schema %s v%d does not compile: %s", k.action, k.version, msg)}
	}
	v.mu.Lock()
	v.compiled[k] = c
	delete(v.noSchema, k.action)
	v.mu.Unlock()
	return c, c.err
}

// Forget drops the negative cache entry of an action, so that a schema
// created on this node applies at once.
func (v *Validator) Forget(action string) {
	v.mu.Lock()
	delete(v.noSchema, action)
	v.forgets++
	v.mu.Unlock()
}

// Check refuses a schema about to be created: an EINVALIDSCHEMA
// *trail.Error when a metadata document is not a valid JSON Schema or the
// target types are missing or repeated; ESCHEMATOOCOMPLEX when its
// documents are over trail.MaxSchemaBytes together, one is nested deeper
// than trail.MaxSchemaDepth, or they do not compile within
// CompileTimeout; EUNAVAILABLE when MaxCompiles compiles are running.
// Problems' paths point into the request body. It answers within about
// CompileTimeout whatever the schema.
func (v *Validator) Check(s *trail.Schema) error {
	_, err := v.compile(s, v.compileTimeout())
	return err
}

// document is one JSON Schema of a version, and where its compiled form
// goes.
type document struct {
	path string
	raw  json.RawMessage
	set  func(*js.Schema)
}

var (
	errSlow = errors.New("compile timed out")
	errBusy = errors.New("no compile slot")
)

// compile checks s's limits on its raw JSON, then compiles each of its
// documents, waiting at most wait for them all (0: until done). Its error
// is a *trail.Error: EINVALIDSCHEMA or ESCHEMATOOCOMPLEX with problems, or
// EUNAVAILABLE.
func (v *Validator) compile(s *trail.Schema, wait time.Duration) (*compiled, error) {
	var ps []trail.Problem
	c := &compiled{targets: map[string]*js.Schema{}}
	var docs []document
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
		c.targets[t.Type] = nil
		docs = append(docs, document{p + "/metadata", t.Metadata, func(sch *js.Schema) { c.targets[t.Type] = sch }})
	}
	if s.Actor != nil {
		docs = append(docs, document{"/actor/metadata", s.Actor.Metadata, func(sch *js.Schema) { c.actor = sch }})
	}
	docs = append(docs, document{"/metadata", s.Metadata, func(sch *js.Schema) { c.metadata = sch }})

	if tc := checkLimits(docs); len(tc) > 0 {
		return nil, &trail.Error{Code: trail.ESCHEMATOOCOMPLEX, Message: "Audit Log schema too complex: " + tc[0].Path + " " + tc[0].Message + ".", Problems: tc}
	}
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	for _, d := range docs {
		sch, err := v.compileDoc(d.raw, deadline)
		switch {
		case errors.Is(err, errSlow):
			p := trail.Problem{Path: d.path, Message: fmt.Sprintf("did not compile within %s: a schema must compile within %s", wait, wait)}
			return nil, &trail.Error{Code: trail.ESCHEMATOOCOMPLEX, Message: "Audit Log schema too complex: " + p.Path + " " + p.Message + ".", Problems: []trail.Problem{p}}
		case errors.Is(err, errBusy):
			return nil, trail.Errorf(trail.EUNAVAILABLE, "Too many schemas are being compiled; try again.")
		case err != nil:
			ps = append(ps, trail.Problem{Path: d.path, Message: err.Error()})
		}
		d.set(sch)
	}
	if len(ps) > 0 {
		return nil, &trail.Error{Code: trail.EINVALIDSCHEMA, Message: "Invalid Audit Log schema.", Problems: ps}
	}
	return c, nil
}

// checkLimits reports the documents over trail.MaxSchemaBytes together or
// nested deeper than trail.MaxSchemaDepth, reading their raw JSON only.
func checkLimits(docs []document) []trail.Problem {
	var ps []trail.Problem
	for _, d := range docs {
		if depth(d.raw, trail.MaxSchemaDepth) > trail.MaxSchemaDepth {
			ps = append(ps, trail.Problem{Path: d.path, Message: fmt.Sprintf("is nested more than %d deep: at most %d levels of objects and arrays are allowed",
				trail.MaxSchemaDepth, trail.MaxSchemaDepth)})
		}
	}
	total := 0
	for _, d := range docs {
		total += len(d.raw)
		if total > trail.MaxSchemaBytes {
			ps = append(ps, trail.Problem{Path: d.path, Message: fmt.Sprintf("brings the schema's JSON Schemas to %d bytes together: at most %d (64 KiB) are allowed",
				total, trail.MaxSchemaBytes)})
			break
		}
	}
	return ps
}

// depth returns how deep objects and arrays nest in the JSON text b,
// stopping once past limit.
func depth(b []byte, limit int) int {
	d, most := 0, 0
	inString, escaped := false, false
	for _, ch := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case ch == '\\':
				escaped = true
			case ch == '"':
				inString = false
			}
		case ch == '"':
			inString = true
		case ch == '{' || ch == '[':
			d++
			if d > most {
				most = d
				if most > limit {
					return most
				}
			}
		case ch == '}' || ch == ']':
			d--
		}
	}
	return most
}

// compileDoc compiles one JSON Schema document: one compile of a given
// document at a time (callers of the same one share it), at most
// MaxCompiles in all. It waits for the result until deadline (nil:
// until done): errSlow when the compile ran past it, errBusy when it could
// not start; the compile itself goes on to its end.
func (v *Validator) compileDoc(raw json.RawMessage, deadline <-chan time.Time) (*js.Schema, error) {
	if isNull(raw) {
		return nil, nil
	}
	sum := sha256.Sum256(raw)
	ch := v.flights.DoChan("doc\x00"+string(sum[:]), func() (any, error) {
		t := time.NewTimer(v.compileTimeout())
		defer t.Stop()
		select {
		case v.slots <- struct{}{}:
		case <-t.C:
			return nil, errBusy
		}
		v.mu.Lock()
		v.running[sum] = true
		v.mu.Unlock()
		defer func() {
			v.mu.Lock()
			delete(v.running, sum)
			v.mu.Unlock()
			<-v.slots
		}()
		if v.onCompile != nil {
			v.onCompile()
		}
		sch, err := compileOne(raw)
		return sch, err
	})
	select {
	case r := <-ch:
		sch, _ := r.Val.(*js.Schema)
		return sch, r.Err
	case <-deadline:
		v.mu.Lock()
		running := v.running[sum]
		v.mu.Unlock()
		if running {
			return nil, errSlow
		}
		return nil, errBusy
	}
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

// noLoader refuses every external reference: a schema must be
// self-contained, and Trail never reads files or URLs on a schema's word.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external references are not allowed: %s", url)
}

func compileOne(raw json.RawMessage) (*js.Schema, error) {
	if isNull(raw) {
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
