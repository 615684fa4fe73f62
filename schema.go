package trail

import (
	"context"
	"encoding/json"
	"time"
)

// Limits of a schema version (SPEC §5), checked on the raw JSON before
// anything is compiled: a JSON Schema's cost to compile grows with its
// size and nesting, and a few kilobytes nested thousands deep took
// minutes.
const (
	// MaxSchemaBytes is the most bytes the JSON Schema documents of one
	// version (targets', actor's and event metadata schemas) may have
	// together.
	MaxSchemaBytes = 64 << 10
	// MaxSchemaDepth is the deepest nesting of JSON objects and arrays in
	// one JSON Schema document: {} is 1 deep, {"items":{}} 2.
	MaxSchemaDepth = 32
)

// Schema is one immutable version of an action's schema (SPEC §5). The
// metadata fields hold JSON Schema (Draft 2020-12) documents.
type Schema struct {
	Action    string          `json:"-"`
	Version   int             `json:"version"`
	Targets   []SchemaTarget  `json:"targets"`
	Actor     *SchemaActor    `json:"actor,omitempty"`
	Metadata  json.RawMessage `json:"metadata,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
}

// SchemaTarget is one allowed target type of a schema.
type SchemaTarget struct {
	Type     string          `json:"type"`
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// SchemaActor constrains the actor's metadata.
type SchemaActor struct {
	Metadata json.RawMessage `json:"metadata"`
}

// Action is an event type with its latest schema.
type Action struct {
	Name      string    `json:"name"`
	Schema    *Schema   `json:"schema"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// SchemaService manages actions and their schema versions.
type SchemaService interface {
	// CreateSchema stores the next version of s.Action, creating the
	// action if needed, and sets Version and CreatedAt. Records
	// audit_log_schema.created in org_system.
	CreateSchema(ctx context.Context, s *Schema) error

	// FindSchema returns one version, or ENOTFOUND.
	FindSchema(ctx context.Context, action string, version int) (*Schema, error)

	// HasSchemas reports whether the action has any schema version.
	HasSchemas(ctx context.Context, action string) (bool, error)

	// FindSchemas lists an action's versions; keys are versions as
	// decimal strings. ENOTFOUND for an unknown action.
	FindSchemas(ctx context.Context, action string, f ListFilter) ([]*Schema, bool, error)

	// FindActions lists actions by name with their latest schema.
	FindActions(ctx context.Context, f ListFilter) ([]*Action, bool, error)
}
