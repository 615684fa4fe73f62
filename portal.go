package trail

import (
	"context"
	"crypto/sha256"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Portal roles (SPEC §9): owners and admins see the audit log, export it
// and manage streams; members see a page saying so and nothing else.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Portal intents, as WorkOS names them: where a session starts.
const (
	IntentAuditLogs  = "audit_logs"
	IntentLogStreams = "log_streams"
)

// Lifetimes of portal links and sessions (SPEC §9).
const (
	PortalLinkTTL    = 5 * time.Minute
	PortalSessionTTL = 12 * time.Hour
)

// ActionPortalSessionCreated records a portal link opened (SPEC §9, §12).
const ActionPortalSessionCreated = "portal_session.created"

// PortalUser is the person a portal link is for, as the application that
// owns its users describes them.
type PortalUser struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Name  string `json:"name"`
	// TimeZone is the IANA name of the zone the UI shows times in ("" is
	// UTC); Locale is the person's BCP 47 language tag ("" is en).
	TimeZone string `json:"time_zone"`
	Locale   string `json:"locale"`
}

// PortalLink is a single-use link that opens a web session for one person
// in one organization. Once opened it is that session.
type PortalLink struct {
	ID             string
	OrganizationID string
	Intent         string
	User           PortalUser
	Role           string
	// ReturnTo is the page of the UI the link opens on (a path under
	// /ui/), "" for the intent's page.
	ReturnTo  string
	CreatedAt time.Time
	ExpiresAt time.Time
	// Token is the link's secret, set only when the link is created; the
	// database keeps its SHA-256.
	Token string
}

// PortalSession is an opened portal link: the person, the organization
// and the role for the session's 12 hours.
type PortalSession struct {
	ID             string // the link's id
	OrganizationID string
	Intent         string
	User           PortalUser
	Role           string
	ReturnTo       string
	// ShowUTC: the person chose to see times in UTC, not in their zone.
	ShowUTC   bool
	OpenedAt  time.Time
	ExpiresAt time.Time
}

// CanView reports whether the session's role may see the audit log,
// export it and manage streams.
func (s *PortalSession) CanView() bool { return s.Role == RoleOwner || s.Role == RoleAdmin }

// Actor is the session's person as an audit event's actor.
func (s *PortalSession) Actor() Actor {
	a := Actor{ID: s.User.ID, Type: "user", Name: s.User.Name}
	if s.User.Email != "" {
		a.Metadata = Metadata{"email": s.User.Email}
	}
	return a
}

// ValidRole reports whether r is a portal role.
func ValidRole(r string) bool { return r == RoleOwner || r == RoleAdmin || r == RoleMember }

// TimeZoneProblem says why name is not a time zone the UI can show times
// in, or returns "": an IANA name such as Europe/Paris or UTC ("Local",
// which would be the server's, is not one).
func TimeZoneProblem(name string) string {
	if name == "" || name == "Local" || len(name) > 64 {
		return "must be an IANA time zone name such as America/Los_Angeles or UTC"
	}
	if _, err := time.LoadLocation(name); err != nil {
		return "must be an IANA time zone name such as America/Los_Angeles or UTC"
	}
	return ""
}

// localeTag is the shape of a BCP 47 language tag (RFC 5646): a language
// and optional subtags of letters and digits.
var localeTag = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$`)

// LocaleProblem says why tag is not a locale (a BCP 47 language tag such
// as en-US or fr-CA), or returns "".
func LocaleProblem(tag string) string {
	if len(tag) > 35 || !localeTag.MatchString(tag) {
		return "must be a BCP 47 language tag such as en-US or fr-CA"
	}
	return ""
}

// MaxReturnTo bounds a portal link's return_to.
const MaxReturnTo = 2048

// ReturnToProblem says why p is not a page of the UI a link may open on,
// or returns "": a path under /ui/ with its query, on this server only.
// Anything that a browser could read as another site (a scheme, "//", a
// backslash, a control character) is refused: no open redirect.
func ReturnToProblem(p string) string {
	switch {
	case len(p) > MaxReturnTo || !utf8.ValidString(p):
		return "must be a path under /ui/ of at most 2048 bytes"
	case !strings.HasPrefix(p, "/ui/") || strings.Contains(p, "//") || strings.ContainsAny(p, "\\#"):
		return "must be a path under /ui/ (such as /ui/?actions=user.role_granted)"
	}
	// Dot segments, written or percent-encoded, could lead out of /ui/.
	path, _, _ := strings.Cut(p, "?")
	if strings.Contains(strings.ToLower(path), "%2e") || slices.Contains(strings.Split(path, "/"), "..") || slices.Contains(strings.Split(path, "/"), ".") {
		return "must be a path under /ui/ without dot segments"
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == ' ' {
			return "must be a path under /ui/ without spaces or control characters (percent-encode them)"
		}
	}
	return ""
}

// SecretHash is how links and sessions find their row: the SHA-256 of
// the secret, so that the database holds nothing that opens a session.
func SecretHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// PortalService stores portal links and the sessions they open.
type PortalService interface {
	// CreatePortalLink stores a link, assigning ID, CreatedAt, ExpiresAt
	// (PortalLinkTTL) and Token. ENOTFOUND for an unknown organization.
	CreatePortalLink(ctx context.Context, l *PortalLink) error

	// OpenPortalLink opens the link with this token once: it becomes a
	// session found by sessionSecret for PortalSessionTTL, and
	// portal_session.created is recorded in the organization's log in the
	// same transaction, with the session's person as the actor and the
	// caller of ctx's context. A used, expired or unknown token is
	// ENOTFOUND with a message saying which.
	OpenPortalLink(ctx context.Context, token, sessionSecret string) (*PortalSession, error)

	// FindPortalSession returns the open session with this secret, or
	// EUNAUTHORIZED when there is none (unknown, expired or ended).
	FindPortalSession(ctx context.Context, sessionSecret string) (*PortalSession, error)

	// EndPortalSession ends the session with this secret (sign out). Ending
	// one that is not open is not an error.
	EndPortalSession(ctx context.Context, sessionSecret string) error

	// SetPortalSessionUTC records whether the open session with this
	// secret shows times in UTC rather than in its person's zone.
	SetPortalSessionUTC(ctx context.Context, sessionSecret string, utc bool) error

	// SaveView stores a named view of the organization's audit log,
	// giving it its ID and CreatedAt, and records audit_log_view.created
	// in the organization's log in the same transaction. EINVALID for a
	// bad name or query, ECONFLICT when the name is taken (ignoring case)
	// or the organization has MaxSavedViews, ENOTFOUND for an unknown
	// organization.
	SaveView(ctx context.Context, v *SavedView) error

	// FindViews returns the organization's saved views, by name.
	FindViews(ctx context.Context, orgID string) ([]*SavedView, error)

	// DeleteView removes one of the organization's views and records
	// audit_log_view.deleted; ENOTFOUND when it has none of that ID.
	DeleteView(ctx context.Context, orgID, id string) error
}
