-- An actor's index holds occurred_at: the web UI's histogram counts an
-- actor's events by date from the index alone.
DROP INDEX events_org_actor;
CREATE INDEX events_org_actor ON events (organization_id, actor_id, idx) INCLUDE (occurred_at);
