-- Tamper evidence (SPEC §6). Each event row carries its leaf hash; each
-- organization's Merkle tree is kept as C2SP tiles (up to 256 hashes of
-- one tree level a row) and every signed checkpoint is kept.
ALTER TABLE events ADD COLUMN leaf_hash BLOB; -- NULL only in rows older than this migration, which Open fills in

-- The size of the tree of the organization's latest checkpoint; NULL
-- until the first one. The integrator reads organizations whose log is
-- ahead of their tree through the partial index.
ALTER TABLE organizations ADD COLUMN tree_size INTEGER;
CREATE INDEX organizations_pending ON organizations (id) WHERE tree_size IS NULL OR next_index > tree_size;

CREATE TABLE merkle_tiles (
	organization_id TEXT NOT NULL,
	level           INTEGER NOT NULL, -- tile level: hashes of tree level 8×level
	idx             INTEGER NOT NULL, -- tile index within the level
	hashes          BLOB NOT NULL,    -- up to 256 SHA-256 hashes, concatenated
	PRIMARY KEY (organization_id, level, idx)
);

CREATE TABLE checkpoints (
	organization_id TEXT NOT NULL,
	tree_size       INTEGER NOT NULL,
	root            BLOB NOT NULL,
	note            TEXT NOT NULL, -- the signed note, verbatim
	created_at      TEXT NOT NULL,
	PRIMARY KEY (organization_id, tree_size)
) WITHOUT ROWID;

-- What the database was first used with: the checkpoints' verifier key
-- and origin prefix.
CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
