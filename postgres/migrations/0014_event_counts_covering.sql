-- The web UI's histogram sums n over an organization's hours (SPEC §9).
-- With n in the primary key's index the sum is an index-only scan instead
-- of reading ~130,000 rows of the table for 30 days at 10 M events
-- (histogram p95 57 → 44–52 ms, BENCHMARKS.md, 2026-12-06 night). The key
-- is unchanged, so the appends' ON CONFLICT is too.
ALTER TABLE event_counts DROP CONSTRAINT event_counts_pkey;
ALTER TABLE event_counts ADD CONSTRAINT event_counts_pkey PRIMARY KEY (organization_id, hour, action) INCLUDE (n);
