-- Exports (SPEC §8): asynchronous jobs that write a period of an
-- organization's events to a file in the data directory.
CREATE TABLE exports (
	organization_id TEXT NOT NULL,
	id              TEXT NOT NULL,
	format          TEXT NOT NULL,
	gzip            INTEGER NOT NULL,
	filter          TEXT NOT NULL,              -- JSON of the event filter
	state           TEXT NOT NULL,              -- pending, ready, error, expired
	error           TEXT NOT NULL DEFAULT '',
	rows            INTEGER NOT NULL DEFAULT 0,
	bytes           INTEGER NOT NULL DEFAULT 0,
	min_tree_size   INTEGER NOT NULL,           -- the log's size at creation
	tree_size       INTEGER,                    -- of the checkpoint the file was written against
	attempts        INTEGER NOT NULL DEFAULT 0,
	claim           TEXT NOT NULL DEFAULT '',   -- the holder's claim while pending
	due_at          INTEGER NOT NULL,           -- Unix nanoseconds: a pending export may be claimed from then on
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	ready_at        INTEGER,                    -- Unix nanoseconds
	file            TEXT,                       -- the file's name in the export directory, when ready
	PRIMARY KEY (organization_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX exports_id ON exports (id);
CREATE INDEX exports_due ON exports (due_at) WHERE state = 'pending';
CREATE INDEX exports_ready ON exports (ready_at) WHERE state = 'ready';

-- When a purged event occurred, so that an export of a period holds the
-- purged events of that period. NULL for events purged before it was kept.
ALTER TABLE purged_events ADD COLUMN occurred_at INTEGER;
