package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/trail-audit/trail"
)

const keysUsage = `Create, list and revoke API keys directly on the database.

Usage:

	trail keys create --name NAME --permissions P[,P…] [--org ORG] [--rate-limit N]
	trail keys list [--org ORG]
	trail keys revoke KEY_ID

Permissions: events:write, events:read, schemas:write, exports, streams,
organizations, keys, portal, metrics (instance-wide keys only), admin.
`

func (m *Main) runKeys(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(m.Stderr, keysUsage)
		return nil
	}
	sub, args := args[0], args[1:]
	fs := m.newFlagSet("keys "+sub, strings.SplitN(keysUsage, "\n", 2)[0])
	var sf storageFlags
	sf.register(fs)
	name := fs.String("name", "", "key name (create)")
	org := fs.String("org", "", "organization id: scope the key to it (create) or list its keys (list)")
	perms := fs.String("permissions", "", "comma-separated permissions (create)")
	rateLimit := fs.Int("rate-limit", -1, "requests a minute for this key; -1: the instance default (create)")
	db, err := m.parseAndOpen(ctx, fs, &sf, args)
	if err != nil {
		return err
	}
	defer db.Close()
	keys := db.APIKeys
	switch sub {
	case "create":
		if *name == "" || *perms == "" {
			return errors.New("keys create needs --name and --permissions")
		}
		k := &trail.APIKey{Name: *name, OrganizationID: *org}
		for _, p := range strings.Split(*perms, ",") {
			k.Permissions = append(k.Permissions, trail.Permission(strings.TrimSpace(p)))
		}
		if *rateLimit >= 0 {
			k.RateLimit = rateLimit
		}
		if err := keys.CreateAPIKey(ctx, k); err != nil {
			return fmt.Errorf("create key: %s", cliError(err))
		}
		fmt.Fprintf(m.Stderr, "Created %s. The secret is shown this once:\n", k.ID)
		fmt.Fprintln(m.Stdout, k.Secret)
	case "list":
		tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tORGANIZATION\tPERMISSIONS\tCREATED\tREVOKED")
		f := trail.ListFilter{Limit: 100, Ascending: true}
		for {
			list, more, err := keys.FindAPIKeys(ctx, *org, f)
			if err != nil {
				return err
			}
			for _, k := range list {
				scope, revoked := k.OrganizationID, ""
				if scope == "" {
					scope = "(instance)"
				}
				if k.RevokedAt != nil {
					revoked = k.RevokedAt.Format("2006-01-02T15:04:05Z")
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, scope, trail.JoinPermissions(k.Permissions), k.CreatedAt.Format("2006-01-02T15:04:05Z"), revoked)
			}
			if !more || len(list) == 0 {
				break
			}
			f.After = list[len(list)-1].ID
		}
		return tw.Flush()
	case "revoke":
		if fs.NArg() != 1 {
			return errors.New("keys revoke needs one KEY_ID")
		}
		if err := keys.RevokeAPIKey(ctx, fs.Arg(0)); err != nil {
			return fmt.Errorf("revoke: %s", cliError(err))
		}
		fmt.Fprintf(m.Stderr, "Revoked %s.\n", fs.Arg(0))
	default:
		fmt.Fprint(m.Stderr, keysUsage)
		return fmt.Errorf("unknown keys command %q", sub)
	}
	return nil
}

// cliError is the message for an operator: a client-safe message when there
// is one, the whole error otherwise.
func cliError(err error) string {
	if trail.ErrorCode(err) == trail.EINTERNAL {
		return err.Error()
	}
	return trail.ErrorMessage(err)
}
