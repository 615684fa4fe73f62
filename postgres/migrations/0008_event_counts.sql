-- How many events of each action occurred in each hour, kept as events are
-- appended and purged: the web UI's histogram sums these instead of
-- counting millions of events (SPEC §9).
CREATE TABLE event_counts (
	organization_id text COLLATE "C" NOT NULL,
	hour            bigint NOT NULL, -- occurred_at in whole UTC hours since 1970
	action          text COLLATE "C" NOT NULL,
	n               bigint NOT NULL,
	PRIMARY KEY (organization_id, hour, action)
);
INSERT INTO event_counts (organization_id, hour, action, n)
	SELECT organization_id, occurred_at / 3600000000000, action, count(*) FROM events GROUP BY 1, 2, 3;
