-- Date ranges read each day's events in commit order and merge the days,
-- instead of sorting every event of the range: index the day of
-- occurred_at (UTC, whole days since 1970) rather than occurred_at itself.
-- seq and occurred_at are in the index so that the edges of a range, which
-- end mid-day, are skipped without reading the table.
CREATE INDEX events_org_day ON events (organization_id, occurred_at / 86400000000000, seq, occurred_at);
DROP INDEX events_org_occurred;
