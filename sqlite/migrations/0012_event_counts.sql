-- How many events of each action occurred in each hour, kept as events are
-- appended and purged: the web UI's histogram sums these instead of
-- counting millions of events (SPEC §9).
CREATE TABLE event_counts (
	organization_id TEXT NOT NULL,
	hour            INTEGER NOT NULL, -- occurred_at in whole UTC hours since 1970
	action          TEXT NOT NULL,
	n               INTEGER NOT NULL,
	PRIMARY KEY (organization_id, hour, action)
) WITHOUT ROWID;
INSERT INTO event_counts (organization_id, hour, action, n)
	SELECT organization_id, occurred_at / 3600000000000, action, COUNT(*) FROM events GROUP BY 1, 2, 3;
