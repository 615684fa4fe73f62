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
		"                    [--user-id ID --user-email EMAIL --user-name NAME] [--time-zone ZONE] [--locale TAG]\n"+
		"                    [--return-to /ui/…] [--url URL]")
	var sf storageFlags
	sf.register(fs)
	org := fs.String("org", "", "organization id (required)")
	role := fs.String("role", trail.RoleOwner, "owner, admin or member")
	intent := fs.String("intent", trail.IntentAuditLogs, "audit_logs (the event list) or log_streams (the settings)")
	userID := fs.String("user-id", "operator", "the person's id, recorded as the actor of what they do")
	email := fs.String("user-email", "", "the person's email")
	name := fs.String("user-name", "Trail operator", "the person's name")
	zone := fs.String("time-zone", "", "the IANA time zone the UI shows times in (default UTC), e.g. Europe/Paris")
	locale := fs.String("locale", "", "the person's BCP 47 language tag, e.g. fr-FR (the first day of their week)")
	returnTo := fs.String("return-to", "", "the page of the UI the link opens on, a path under /ui/")
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
	case *zone != "" && trail.TimeZoneProblem(*zone) != "":
		return fmt.Errorf("--time-zone %q: %s", *zone, trail.TimeZoneProblem(*zone))
	case *locale != "" && trail.LocaleProblem(*locale) != "":
		return fmt.Errorf("--locale %q: %s", *locale, trail.LocaleProblem(*locale))
	case *returnTo != "" && trail.ReturnToProblem(*returnTo) != "":
		return fmt.Errorf("--return-to %q: %s", *returnTo, trail.ReturnToProblem(*returnTo))
	}
	link, err := portalLink(ctx, db.Portal, *base, &trail.PortalLink{OrganizationID: *org, Intent: *intent, Role: *role,
		ReturnTo: *returnTo, User: trail.PortalUser{ID: *userID, Email: *email, Name: *name, TimeZone: *zone, Locale: *locale}})
	if err != nil {
		return fmt.Errorf("portal link: %s", cliError(err))
	}
	fmt.Fprintf(m.Stderr, "Open this link within 5 minutes; it works once and opens a 12-hour session as %s of %s:\n", *role, *org)
	fmt.Fprintln(m.Stdout, link)
	return nil
}
