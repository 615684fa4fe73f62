-- Date ranges read each day's events in commit order and merge the days,
-- instead of sorting every event of the range: index the day of
-- occurred_at (UTC, whole days since 1970) rather than occurred_at itself.
CREATE INDEX events_org_day ON events (organization_id, occurred_at / 86400000000000);
DROP INDEX events_org_occurred;
