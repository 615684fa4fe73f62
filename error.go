package trail

import (
	"errors"
	"fmt"
)

// Client-safe error codes. The HTTP layer maps each to one status.
const (
	ECONFLICT         = "conflict"                            // 409
	EINTERNAL         = "internal"                            // 500
	EINVALID          = "invalid"                             // 400: a bad query parameter or request value
	EINVALIDEVENT     = "invalid_audit_log_event"             // 400: an event that breaks the rules of SPEC §3 or its schema
	EMALFORMED        = "validation_failed"                   // 422: a request that is not the expected JSON shape
	ENOTFOUND         = "not_found"                           // 404
	EFORBIDDEN        = "forbidden"                           // 403
	EUNAUTHORIZED     = "unauthorized"                        // 401
	ETOOLARGE         = "request_too_large"                   // 413
	ERATELIMITED      = "rate_limit_exceeded"                 // 429
	EUNAVAILABLE      = "unavailable"                         // 503
	EINVALIDSCHEMA    = "invalid_audit_log_schema"            // 400: a schema that is not a valid JSON Schema
	EINVALIDRANGE     = "invalid_audit_log_export_range_date" // 400: an export's range_start or range_end (WorkOS's code)
	ESCHEMATOOCOMPLEX = "schema_too_complex"                  // 400: a schema over MaxSchemaBytes or MaxSchemaDepth, or too slow to compile
)

// Problem is one reason a value was rejected. Path is a JSON pointer into
// the offending document (the event for ingestion, "/field" for a request
// body), as in Ajv's instancePath.
type Problem struct {
	Path    string `json:"instancePath"`
	Message string `json:"message"`
}

// Error is a Trail error whose Code and Message may be shown to clients.
type Error struct {
	Code     string
	Message  string
	Problems []Problem
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("trail error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err's *Error, "" for nil and EINTERNAL for
// any other error.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of err's *Error, or a generic
// message for internal errors so that no detail leaks to clients.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// ErrorProblems returns the problems of err's *Error, if any.
func ErrorProblems(err error) []Problem {
	var e *Error
	if errors.As(err, &e) {
		return e.Problems
	}
	return nil
}

// The errors Trail returns in more than one place, each worded once.

// ErrOrganizationNotFound is an unknown organization.
func ErrOrganizationNotFound(id string) *Error {
	return Errorf(ENOTFOUND, "Organization not found: '%s'.", id)
}

// ErrOrganizationExists is an organization id that is taken.
func ErrOrganizationExists(id string) *Error {
	return Errorf(ECONFLICT, "Organization already exists: '%s'.", id)
}

// ErrAPIKeyNotFound is an unknown API key.
func ErrAPIKeyNotFound(id string) *Error { return Errorf(ENOTFOUND, "API key not found: '%s'.", id) }

// ErrInvalidAPIKey is a secret that authenticates no active key.
func ErrInvalidAPIKey() *Error { return Errorf(EUNAUTHORIZED, "Invalid API key.") }

// ErrEventNotFound is an unknown event.
func ErrEventNotFound(id string) *Error {
	return Errorf(ENOTFOUND, "Audit Log Event not found: '%s'.", id)
}

// ErrActionNotFound is an action with no schema.
func ErrActionNotFound(action string) *Error {
	return Errorf(ENOTFOUND, "Audit Log Action not found: '%s'.", action)
}

// ErrSchemaNotFound is an unknown version of an action's schema.
func ErrSchemaNotFound(action string, version int) *Error {
	return Errorf(ENOTFOUND, "Schema version %d of action '%s' not found.", version, action)
}

// ErrExportNotFound is an unknown export.
func ErrExportNotFound(id string) *Error {
	return Errorf(ENOTFOUND, "Audit Log Export not found: '%s'.", id)
}

// ErrExportLost is a claim-guarded change of an export whose claim was
// lost.
func ErrExportLost(id string) *Error {
	return Errorf(ECONFLICT, "The export %s is no longer held by this node.", id)
}

// ErrExportNoFile is an export that has no file to download.
func ErrExportNoFile(id, state string) *Error {
	return Errorf(ENOTFOUND, "The export %s has no file (it is %s).", id, state)
}

// ErrStreamNotFound is an unknown log stream.
func ErrStreamNotFound(id string) *Error { return Errorf(ENOTFOUND, "Log stream not found: '%s'.", id) }

// ErrStreamLost is a holder's change of a stream that changed or is held
// by another node.
func ErrStreamLost(id string) *Error {
	return Errorf(ECONFLICT, "The log stream %s changed or is no longer held by this node.", id)
}

// ErrNoCheckpoint is an organization whose log has no checkpoint yet.
func ErrNoCheckpoint(orgID string) *Error {
	return Errorf(ENOTFOUND, "No checkpoint of '%s' yet.", orgID)
}

// ErrNoCheckpointOfSize is a tree size no checkpoint has.
func ErrNoCheckpointOfSize(orgID string, size int64) *Error {
	return Errorf(ENOTFOUND, "No checkpoint of '%s' has tree size %d.", orgID, size)
}

// ErrInvalidCursor is a list cursor that is not one Trail gave.
func ErrInvalidCursor() *Error { return Errorf(EINVALID, "Invalid cursor.") }

// ErrCursorOutsideLog is an event cursor of another organization's log.
func ErrCursorOutsideLog() *Error {
	return Errorf(EINVALID, "The cursor does not point into this organization's log.")
}

// ErrShuttingDown is a request that arrives while Trail stops.
func ErrShuttingDown() *Error { return Errorf(EUNAVAILABLE, "Trail is shutting down.") }

// ErrQueueFull is an append that finds the commit queue full.
func ErrQueueFull() *Error {
	return Errorf(EUNAVAILABLE, "Too many events are waiting to be written; retry.")
}

// ErrIdempotentRunning is a request whose Idempotency-Key is claimed by
// a request still running.
func ErrIdempotentRunning() *Error {
	return Errorf(ECONFLICT, "A request with this Idempotency-Key is still running; retry later.")
}

// ErrAlreadyExists is a unique violation no rule names better.
func ErrAlreadyExists() *Error { return Errorf(ECONFLICT, "Already exists.") }

// ErrSchemaNewer is a database migrated by a newer binary.
func ErrSchemaNewer(current, known int) *Error {
	return Errorf(ECONFLICT, "database schema version %d is newer than this binary's %d: upgrade trail", current, known)
}

// Malformed is an EMALFORMED error (a 422 with WorkOS's field errors)
// from pairs of a field and its error code, e.g.
// Malformed("config.url", "must_be_string").
func Malformed(fieldCodes ...string) error {
	e := &Error{Code: EMALFORMED, Message: "Validation failed."}
	for i := 0; i+1 < len(fieldCodes); i += 2 {
		e.Problems = append(e.Problems, Problem{Path: fieldCodes[i], Message: fieldCodes[i+1]})
	}
	return e
}

// ErrNotFound is a row a driver did not find, when nothing better is
// known of it.
func ErrNotFound() *Error { return Errorf(ENOTFOUND, "Not found.") }

// ErrRequestEnded is an append whose request ended (the client hung up,
// or its deadline passed) before its events were taken for writing:
// nothing of it was stored.
func ErrRequestEnded() *Error {
	return Errorf(EUNAVAILABLE, "The request ended before its events were written: nothing was stored; retry.")
}
