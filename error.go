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
