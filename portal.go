package trail

import (
	"context"
	"crypto/sha256"
	"time"
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
}

// PortalLink is a single-use link that opens a web session for one person
// in one organization. Once opened it is that session.
type PortalLink struct {
	ID             string
	OrganizationID string
	Intent         string
	User           PortalUser
	Role           string
	CreatedAt      time.Time
	ExpiresAt      time.Time
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
	OpenedAt       time.Time
	ExpiresAt      time.Time
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
}
