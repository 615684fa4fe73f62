-- Tamper evidence (SPEC §6). Each event row carries its leaf hash; each
-- organization's Merkle tree is kept as C2SP tiles (up to 256 hashes of
-- one tree level a row) and every signed checkpoint is kept. Tiles keep
-- the leaf hashes of events whose partition retention dropped.
ALTER TABLE events ADD COLUMN leaf_hash bytea; -- NULL only in rows older than this migration, which Open fills in

-- The size of the tree of each organization's latest checkpoint (no row
-- until the first one). It is a table of its own, not a column of
-- organizations, so that an integrator moving a tree never waits for the
-- row lock that a committer holds on the organization's head while it
-- appends.
CREATE TABLE log_trees (
	organization_id text COLLATE "C" PRIMARY KEY,
	tree_size       bigint NOT NULL
);

CREATE TABLE merkle_tiles (
	organization_id text COLLATE "C" NOT NULL,
	level           integer NOT NULL, -- tile level: hashes of tree level 8×level
	idx             bigint NOT NULL,  -- tile index within the level
	hashes          bytea NOT NULL,   -- up to 256 SHA-256 hashes, concatenated
	PRIMARY KEY (organization_id, level, idx)
);

CREATE TABLE checkpoints (
	organization_id text COLLATE "C" NOT NULL,
	tree_size       bigint NOT NULL,
	root            bytea NOT NULL,
	note            text NOT NULL, -- the signed note, verbatim
	created_at      timestamptz NOT NULL,
	PRIMARY KEY (organization_id, tree_size)
);

-- What the database was first used with: the checkpoints' verifier key
-- and origin prefix (instance-wide; a reference table under Citus).
CREATE TABLE settings (
	name  text COLLATE "C" PRIMARY KEY,
	value text NOT NULL
);
