-- Exports (SPEC §8): asynchronous jobs that write a period of an
-- organization's events to a file, kept in the database in chunks so that
-- every node can serve it (SPEC §11).
CREATE TABLE exports (
	organization_id text COLLATE "C" NOT NULL,
	id              text COLLATE "C" NOT NULL,
	format          text NOT NULL,
	gzip            boolean NOT NULL,
	filter          jsonb NOT NULL,             -- the event filter
	state           text NOT NULL,              -- pending, ready, error, expired
	error           text NOT NULL DEFAULT '',
	rows            bigint NOT NULL DEFAULT 0,
	bytes           bigint NOT NULL DEFAULT 0,
	min_tree_size   bigint NOT NULL,            -- the log's size at creation
	tree_size       bigint,                     -- of the checkpoint the file was written against
	attempts        integer NOT NULL DEFAULT 0,
	claim           text NOT NULL DEFAULT '',   -- the holder's claim while pending
	due_at          timestamptz NOT NULL,       -- a pending export may be claimed from then on
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	ready_at        timestamptz,
	file            text,                       -- the claim whose chunks are the file, when ready
	PRIMARY KEY (organization_id, id)
);
CREATE INDEX exports_id ON exports (id);
CREATE INDEX exports_due ON exports (due_at) WHERE state = 'pending';
CREATE INDEX exports_ready ON exports (ready_at) WHERE state = 'ready';

-- An export's file: the chunks written under one claim, in seq order.
-- Chunks of a claim that did not finish are removed by the expiry.
CREATE TABLE export_chunks (
	organization_id text COLLATE "C" NOT NULL,
	export_id       text COLLATE "C" NOT NULL,
	claim           text COLLATE "C" NOT NULL,
	seq             integer NOT NULL,
	data            bytea NOT NULL,
	written_at      timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (organization_id, export_id, claim, seq)
);
-- Chunks are gzip or dense text written once: storing them uncompressed
-- spares PostgreSQL a compression attempt per chunk.
ALTER TABLE export_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- When a purged event occurred, so that an export of a period holds the
-- purged events of that period. NULL for events purged before it was kept.
ALTER TABLE purged_events ADD COLUMN occurred_at bigint;
