package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/internal/ident"
)

// SessionCookie is the portal session's cookie: HttpOnly, SameSite=Strict,
// twelve hours (SPEC §9).
const SessionCookie = "trail_session"

// portalLinkJSON is the response of POST /portal/generate_link.
type portalLinkJSON struct {
	Link string `json:"link"`
}

// maxPortalText bounds the user's id, email and name.
const maxPortalText = 256

// handleGenerateLink is POST /portal/generate_link: WorkOS's body
// (organization, intent, return_url, success_url, it_contact_emails) plus
// Trail's user and role. Without them, as a WorkOS SDK sends it, the link
// is for an admin the application does not name.
func (s *Server) handleGenerateLink(w http.ResponseWriter, r *http.Request, key *trail.APIKey) {
	raw, err := decodeBody(w, r, trail.MaxRequestBytes)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	l := &trail.PortalLink{Intent: trail.IntentAuditLogs, Role: trail.RoleAdmin}
	str := func(name string, v json.RawMessage, dst *string) error {
		if err := json.Unmarshal(v, dst); err != nil {
			return malformed(name, "must_be_string")
		}
		return nil
	}
	for name, v := range raw {
		switch name {
		case "organization":
			err = str(name, v, &l.OrganizationID)
		case "intent":
			err = str(name, v, &l.Intent)
		case "role":
			err = str(name, v, &l.Role)
		case "return_to":
			err = str(name, v, &l.ReturnTo)
		case "return_url", "success_url":
			var u string
			err = str(name, v, &u)
		case "it_contact_emails":
			var emails []string
			if json.Unmarshal(v, &emails) != nil {
				err = malformed(name, "must_be_array_of_strings")
			} else if len(emails) > 20 {
				err = invalidField(name, "at most 20 emails")
			}
		case "user":
			var u map[string]json.RawMessage
			if json.Unmarshal(v, &u) != nil {
				err = malformed(name, "must_be_object")
				break
			}
			for field, fv := range u {
				switch field {
				case "id":
					err = str("user.id", fv, &l.User.ID)
				case "email":
					err = str("user.email", fv, &l.User.Email)
				case "name":
					err = str("user.name", fv, &l.User.Name)
				case "time_zone":
					err = str("user.time_zone", fv, &l.User.TimeZone)
				case "locale":
					err = str("user.locale", fv, &l.User.Locale)
				default:
					err = malformed("user."+field, "unknown_field")
				}
				if err != nil {
					break
				}
			}
		default:
			err = malformed(name, "unknown_field")
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	switch {
	case l.OrganizationID == "":
		err = malformed("organization", "required")
	case l.Intent != trail.IntentAuditLogs && l.Intent != trail.IntentLogStreams:
		err = invalidField("intent", "must be audit_logs or log_streams (Trail serves no other portal)")
	case !trail.ValidRole(l.Role):
		err = invalidField("role", "must be owner, admin or member")
	case raw["user"] != nil && strings.TrimSpace(l.User.ID) == "":
		err = malformed("user.id", "required")
	}
	for _, f := range []struct{ name, v string }{{"user.id", l.User.ID}, {"user.email", l.User.Email}, {"user.name", l.User.Name}} {
		if err == nil && (len(f.v) > maxPortalText || !utf8.ValidString(f.v) || strings.ContainsRune(f.v, 0)) {
			err = invalidField(f.name, "must be valid text of at most 256 bytes")
		}
	}
	for _, f := range []struct {
		name, v string
		problem func(string) string
	}{{"user.time_zone", l.User.TimeZone, trail.TimeZoneProblem}, {"user.locale", l.User.Locale, trail.LocaleProblem}, {"return_to", l.ReturnTo, trail.ReturnToProblem}} {
		if err == nil && f.v != "" && f.problem(f.v) != "" {
			err = invalidField(f.name, f.problem(f.v))
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if _, err := s.org(r.Context(), key, l.OrganizationID); err != nil {
		s.writeError(w, r, err)
		return
	}
	if l.User.ID == "" {
		l.User = trail.PortalUser{ID: "portal_user", Name: "Portal user (not named by the application)"}
	}
	if err := s.Portal.CreatePortalLink(r.Context(), l); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, portalLinkJSON{Link: s.BaseURL() + "/portal/" + l.Token})
}

// invalidField is a 400 naming one field of the body.
func invalidField(field, msg string) error {
	return &trail.Error{Code: trail.EINVALID, Message: "Invalid field " + field + ": " + msg + ".",
		Problems: []trail.Problem{{Path: "/" + strings.ReplaceAll(field, ".", "/"), Message: msg}}}
}

// handleOpenPortal is GET /portal/{token}: the link opens a session once,
// sets its cookie and sends the browser on to the UI. The redirect is a
// page of our own (not a 302), so that the SameSite=Strict cookie goes
// with the next request even when the link was followed from another site.
func (s *Server) handleOpenPortal(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Referrer-Policy", "no-referrer") // the token is in the URL
	secret := ident.Token("ts_")
	ctx := trail.NewContextWithCaller(r.Context(), &trail.Caller{
		Context: requestContext(r),
	})
	sess, err := s.Portal.OpenPortalLink(ctx, r.PathValue("token"), secret)
	if err != nil {
		status := http.StatusInternalServerError
		msg := "Trail could not open this link. Try again in a moment."
		if trail.ErrorCode(err) == trail.ENOTFOUND {
			status, msg = http.StatusGone, trail.ErrorMessage(err)
		} else if s.unavailable(err) {
			w.Header().Set("Retry-After", strconv.Itoa(UnavailableRetryAfter))
			status, msg = http.StatusServiceUnavailable, "Trail's database is unavailable right now. Try again in a moment: the link stays good until it expires."
		} else {
			s.Logger.Error("open portal link", "err", err, "request_id", r.Context().Value(requestIDKey))
		}
		s.renderMessage(w, r, nil, status, "This link cannot be opened", msg)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret, Path: "/", MaxAge: int(trail.PortalSessionTTL / time.Second),
		HttpOnly: true, Secure: s.secureCookies(r), SameSite: http.SameSiteStrictMode})
	next := "/ui/"
	// The page this browser asked for while signed out, if any (kept for
	// an hour, used once).
	asked := ""
	if c, err := r.Cookie(ReturnCookie); err == nil {
		if v, err := url.QueryUnescape(c.Value); err == nil && trail.ReturnToProblem(v) == "" {
			asked = v
		}
		http.SetCookie(w, &http.Cookie{Name: ReturnCookie, Value: "", Path: "/portal/", MaxAge: -1, HttpOnly: true,
			Secure: s.secureCookies(r), SameSite: http.SameSiteLaxMode})
	}
	switch {
	case sess.ReturnTo != "" && trail.ReturnToProblem(sess.ReturnTo) == "": // checked again: the row could have been changed
		next = sess.ReturnTo
	case asked != "":
		next = asked
	case sess.Intent == trail.IntentLogStreams:
		next = "/ui/settings"
	}
	s.render(w, r, http.StatusOK, "opening", &uiPage{Title: "Opening the audit log", Refresh: "0;url=" + next, Data: next})
}

// secureCookies reports whether the session cookie is sent over HTTPS
// only: when the request came over TLS or the public URL is https.
func (s *Server) secureCookies(r *http.Request) bool {
	return r.TLS != nil || strings.HasPrefix(s.PublicURL, "https://")
}

// uiSession is a signed-in request: the session, its secret (the cookie)
// and the API key that stands for it in the API's handlers.
type uiSession struct {
	*trail.PortalSession
	secret string
	key    *trail.APIKey
	org    *trail.Organization
	zone   *uiZone // the zone of its pages' times
}

// Org is the session's organization.
func (u *uiSession) Org() *trail.Organization { return u.org }

// csrf is the session's form token: a hash of the cookie's secret, which
// a page of another site can neither read nor compute.
func (u *uiSession) csrf() string {
	h := sha256.Sum256([]byte("trail-csrf\x00" + u.secret))
	return hex.EncodeToString(h[:])
}

// checkCSRF reports whether a form carries the session's token.
func (u *uiSession) checkCSRF(r *http.Request) bool {
	return subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(u.csrf())) == 1
}

// session returns the request's open session, or EUNAUTHORIZED.
func (s *Server) session(r *http.Request) (*uiSession, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return nil, trail.Errorf(trail.EUNAUTHORIZED, "You are not signed in: open Trail from your application.")
	}
	sess, err := s.Portal.FindPortalSession(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	u := &uiSession{PortalSession: sess, secret: c.Value}
	// The session acts through the API's handlers as a key of its
	// organization with what owners and admins may do.
	u.key = &trail.APIKey{ID: sess.ID, Name: "portal session", OrganizationID: sess.OrganizationID}
	if sess.CanView() {
		u.key.Permissions = []trail.Permission{trail.PermEventsRead, trail.PermExports, trail.PermStreams}
	}
	if u.org, err = s.org(r.Context(), u.key, sess.OrganizationID); err != nil {
		return nil, err
	}
	return u, nil
}

// withCaller is ctx with the session's person as the caller, so that what
// they change is recorded with them as the actor.
func (u *uiSession) withCaller(r *http.Request) context.Context {
	return trail.NewContextWithCaller(r.Context(), &trail.Caller{
		Actor:   u.Actor(),
		Context: requestContext(r),
	})
}
