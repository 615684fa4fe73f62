-- Events whose contents retention removed (SPEC §6), by a row purge or
-- with their whole partition: their id and index stay, so that they read
-- as {"id", "index", "purged": true}; their leaf hashes stay in the tree's
-- level-0 tiles.
CREATE TABLE purged_events (
	organization_id text COLLATE "C" NOT NULL,
	idx             bigint NOT NULL,
	id              text COLLATE "C" NOT NULL,
	PRIMARY KEY (organization_id, idx)
);
CREATE INDEX purged_events_id ON purged_events (id);
