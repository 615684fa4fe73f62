-- The web UI's histogram sums n over an organization's hours (SPEC §9).
-- With n in the primary key's index the sum is an index-only scan; before,
-- each of a 30-day range's ~130,000 rows at 10 M events was a heap read
-- (100–190 ms; 43–89 ms index-only, BENCHMARKS.md 2026-12-07). The key
-- is unchanged, so the appends' ON CONFLICT is too.
ALTER TABLE event_counts DROP CONSTRAINT event_counts_pkey;
ALTER TABLE event_counts ADD CONSTRAINT event_counts_pkey PRIMARY KEY (organization_id, hour, action) INCLUDE (n);
