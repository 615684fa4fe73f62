// Package lint holds tests that check rules about Trail's source code
// itself rather than its behaviour, such as the length of its functions.
// It has no code of its own; run its tests with go test ./internal/lint.
package lint
