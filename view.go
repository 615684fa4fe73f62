package trail

import (
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SavedView is a named view of an organization's audit log in the web UI
// (its filters, dates and zone), saved by one of its owners or admins for
// all of them (SPEC §9).
type SavedView struct {
	ID             string
	OrganizationID string
	Name           string
	// Query is the view's URL query under /ui/, without "?" and without a
	// page cursor ("actions=user.*&range=7d").
	Query     string
	CreatedBy string // the actor ID of the person who saved it
	CreatedAt time.Time
}

// Limits of saved views.
const (
	MaxSavedViews    = 50
	MaxViewNameRunes = 100
	MaxViewQuery     = 2048
)

// Trail's own audit events of saved views.
const (
	ActionViewCreated = "audit_log_view.created"
	ActionViewDeleted = "audit_log_view.deleted"
)

// Validate checks the view's name and query; the query must make a page
// of the UI that ReturnToProblem accepts, so a saved view links nowhere
// else.
func (v *SavedView) Validate() []Problem {
	var ps []Problem
	v.Name = strings.TrimSpace(v.Name)
	switch n := utf8.RuneCountInString(v.Name); {
	case n == 0:
		ps = append(ps, Problem{Path: "/name", Message: "is required"})
	case n > MaxViewNameRunes:
		ps = append(ps, Problem{Path: "/name", Message: "must be at most 100 characters"})
	case strings.IndexFunc(v.Name, unicode.IsControl) >= 0:
		ps = append(ps, Problem{Path: "/name", Message: "must not hold control characters"})
	}
	switch {
	case len(v.Query) > MaxViewQuery:
		ps = append(ps, Problem{Path: "/query", Message: "must be at most 2048 bytes"})
	case ReturnToProblem("/ui/?"+v.Query) != "":
		ps = append(ps, Problem{Path: "/query", Message: "is not a view of the audit log"})
	default:
		if _, err := url.ParseQuery(v.Query); err != nil {
			ps = append(ps, Problem{Path: "/query", Message: "is not a URL query"})
		}
	}
	return ps
}
