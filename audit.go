package trail

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Trail's own audit events (SPEC §12) are built here and only here, one
// constructor per resource, each by the caller in ctx: a service records
// what it changes with the event its resource builds.

// AuditEvent builds one of Trail's own audit events (SPEC §12) for the
// caller of ctx.
func AuditEvent(ctx context.Context, action string, now time.Time, md Metadata, targets ...Target) *EventInput {
	c := CallerFromContext(ctx)
	return &EventInput{
		Action: action, Version: 1, OccurredAt: now.UTC(),
		Actor: c.Actor, Targets: targets, Context: c.Context, Metadata: md,
	}
}

// OrganizationEvent returns an event about an organization: its
// creation, a change of its retention, a purge of its log.
func OrganizationEvent(ctx context.Context, action, orgID, name string, now time.Time, md Metadata) *EventInput {
	return AuditEvent(ctx, action, now, md, Target{ID: orgID, Type: "organization", Name: name})
}

// OrganizationCreatedEvent returns the organization.created event of org.
func OrganizationCreatedEvent(ctx context.Context, org *Organization) *EventInput {
	return OrganizationEvent(ctx, ActionOrganizationCreated, org.ID, org.Name, org.CreatedAt, Metadata{"name": org.Name})
}

// ActionImportCompleted is the own audit event of a trail import run.
const ActionImportCompleted = "audit_log_import.completed"

// ImportEvent returns the audit_log_import.completed event of a run of
// trail import into an organization: its files and counts in md.
func ImportEvent(ctx context.Context, orgID string, now time.Time, md Metadata) *EventInput {
	return OrganizationEvent(ctx, ActionImportCompleted, orgID, "", now, md)
}

// RetentionUpdatedEvent returns the audit_log_retention.updated event of
// a change of an organization's retention from old to days.
func RetentionUpdatedEvent(ctx context.Context, orgID string, old, days int, now time.Time) *EventInput {
	return OrganizationEvent(ctx, ActionRetentionUpdated, orgID, "", now,
		Metadata{"previous_retention_period_in_days": jsonInt(old), "retention_period_in_days": jsonInt(days)})
}

// AuditEvent returns the key's api_key.created or api_key.revoked event.
func (k *APIKey) AuditEvent(ctx context.Context, action string, now time.Time) *EventInput {
	var md Metadata
	if action == ActionAPIKeyCreated {
		md = Metadata{"permissions": JoinPermissions(k.Permissions)}
		if k.OrganizationID != "" {
			md["organization_id"] = k.OrganizationID
		}
	}
	return AuditEvent(ctx, action, now, md, Target{ID: k.ID, Type: "api_key", Name: k.Name})
}

// AuditEvent returns the audit_log_schema.created event of the schema.
func (sc *Schema) AuditEvent(ctx context.Context, now time.Time) *EventInput {
	return AuditEvent(ctx, ActionSchemaCreated, now, Metadata{"version": jsonInt(sc.Version)},
		Target{ID: sc.Action, Type: "audit_log_action"})
}

// AuditEvent returns a stream's own audit event (SPEC §12) by the caller
// in ctx: its type and name, and md.
func (s *Stream) AuditEvent(ctx context.Context, action string, now time.Time, md Metadata) *EventInput {
	if md == nil {
		md = Metadata{}
	}
	md["type"], md["name"] = s.Type, clip(s.Name, MaxMetadataValueChars)
	return AuditEvent(ctx, action, now, md, Target{ID: s.ID, Type: "log_stream", Name: clip(s.Name, MaxNameLength)})
}

// AuditEvent is the session's portal_session.created: the session's person
// as the actor, the session as the target, the context of ctx's caller
// (where the link was opened from).
func (s *PortalSession) AuditEvent(ctx context.Context, now time.Time) *EventInput {
	ev := AuditEvent(ctx, ActionPortalSessionCreated, now, Metadata{"role": s.Role, "intent": s.Intent},
		Target{ID: s.ID, Type: "portal_session"})
	ev.Actor = s.Actor()
	return ev
}

// AuditEvent returns the audit_log_export.created event of the export, by
// the caller in ctx.
func (e *Export) AuditEvent(ctx context.Context, now time.Time) *EventInput {
	md := Metadata{"format": e.Format, "gzip": e.Gzip}
	f := &e.Filter
	if f.RangeStart != nil {
		md["range_start"] = f.RangeStart.UTC().Format(time.RFC3339Nano)
	}
	if f.RangeEnd != nil {
		md["range_end"] = f.RangeEnd.UTC().Format(time.RFC3339Nano)
	}
	for k, vs := range map[string][]string{"actions": f.Actions, "actor_ids": f.ActorIDs, "actor_names": f.ActorNames,
		"actor_types": f.ActorTypes, "target_ids": f.TargetIDs, "targets": f.TargetTypes} {
		if len(vs) > 0 {
			md[k] = clip(strings.Join(vs, ","), MaxMetadataValueChars)
		}
	}
	if f.Query != "" {
		md["q"] = clip(f.Query, MaxMetadataValueChars)
	}
	return AuditEvent(ctx, ActionExportCreated, now, md, Target{ID: e.ID, Type: "audit_log_export"})
}

func jsonInt(n int) any { return json.Number(strconv.Itoa(n)) }

// AuditEvent returns the view's audit_log_view.created or
// audit_log_view.deleted event.
func (v *SavedView) AuditEvent(ctx context.Context, action string, now time.Time) *EventInput {
	return AuditEvent(ctx, action, now, Metadata{"query": v.Query}, Target{ID: v.ID, Type: "audit_log_view", Name: v.Name})
}
