package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/trail-audit/trail"
)

// portalLink stores a portal link and returns its URL under base.
func portalLink(ctx context.Context, portal trail.PortalService, base string, l *trail.PortalLink) (string, error) {
	if err := portal.CreatePortalLink(ctx, l); err != nil {
		return "", err
	}
	return strings.TrimRight(base, "/") + "/portal/" + l.Token, nil
}

func (m *Main) runPortal(ctx context.Context, args []string) error {
	fs := m.newFlagSet("portal", "Print a single-use link, valid 5 minutes, that opens the web UI of an organization's\n"+
		"audit log (SPEC §9), directly on the database: for an operator. Applications call\n"+
		"POST /portal/generate_link instead.\n\n"+
		"Usage: trail portal --org ORG [--role owner|admin|member] [--intent audit_logs|log_streams]\n"+
		"                    [--user-id ID --user-email EMAIL --user-name NAME] [--url URL]")
	var sf storageFlags
	sf.register(fs)
	org := fs.String("org", "", "organization id (required)")
	role := fs.String("role", trail.RoleOwner, "owner, admin or member")
	intent := fs.String("intent", trail.IntentAuditLogs, "audit_logs (the event list) or log_streams (the settings)")
	userID := fs.String("user-id", "operator", "the person's id, recorded as the actor of what they do")
	email := fs.String("user-email", "", "the person's email")
	name := fs.String("user-name", "Trail operator", "the person's name")
	base := fs.String("url", "http://127.0.0.1:8080", "the base URL the browser reaches trail serve at (its --public-url)")
	db, err := m.parseAndOpen(ctx, fs, &sf, args)
	if err != nil {
		return err
	}
	defer db.Close()
	switch {
	case *org == "":
		return errors.New("portal needs --org")
	case !trail.ValidRole(*role):
		return fmt.Errorf("--role %q: want owner, admin or member", *role)
	case *intent != trail.IntentAuditLogs && *intent != trail.IntentLogStreams:
		return fmt.Errorf("--intent %q: want audit_logs or log_streams", *intent)
	}
	link, err := portalLink(ctx, db.Portal, *base, &trail.PortalLink{OrganizationID: *org, Intent: *intent, Role: *role,
		User: trail.PortalUser{ID: *userID, Email: *email, Name: *name}})
	if err != nil {
		return fmt.Errorf("portal link: %s", cliError(err))
	}
	fmt.Fprintf(m.Stderr, "Open this link within 5 minutes; it works once and opens a 12-hour session as %s of %s:\n", *role, *org)
	fmt.Fprintln(m.Stdout, link)
	return nil
}
