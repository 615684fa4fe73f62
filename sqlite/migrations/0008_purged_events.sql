-- Events whose contents retention removed (SPEC §6): their id and index
-- stay, so that they read as {"id", "index", "purged": true}; their leaf
-- hashes stay in the tree's level-0 tiles.
CREATE TABLE purged_events (
	organization_id TEXT NOT NULL,
	idx             INTEGER NOT NULL,
	id              TEXT NOT NULL,
	PRIMARY KEY (organization_id, idx)
) WITHOUT ROWID;
CREATE UNIQUE INDEX purged_events_id ON purged_events (id);
