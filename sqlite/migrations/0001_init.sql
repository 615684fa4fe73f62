-- Trail's first schema on SQLite. Times are RFC 3339 text in UTC, except
-- events.occurred_at, which is Unix nanoseconds so that ranges use an index.

CREATE TABLE organizations (
	id             TEXT PRIMARY KEY,
	name           TEXT NOT NULL,
	retention_days INTEGER NOT NULL DEFAULT 365,
	next_index     INTEGER NOT NULL DEFAULT 0, -- the index the next event gets
	created_at     TEXT NOT NULL,
	updated_at     TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO organizations (id, name, created_at, updated_at)
VALUES ('org_system', 'Trail system', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

CREATE TABLE api_keys (
	id              TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL DEFAULT '', -- '' for an instance-wide key
	name            TEXT NOT NULL,
	permissions     TEXT NOT NULL,            -- JSON array
	prefix          TEXT NOT NULL,            -- first characters of the secret, to find the row
	secret_hash     BLOB NOT NULL,            -- SHA-256 of the secret
	rate_limit      INTEGER,
	created_at      TEXT NOT NULL,
	revoked_at      TEXT
) WITHOUT ROWID;
CREATE INDEX api_keys_prefix ON api_keys (prefix);
CREATE INDEX api_keys_org ON api_keys (organization_id, id);

CREATE TABLE actions (
	name           TEXT PRIMARY KEY,
	latest_version INTEGER NOT NULL,
	created_at     TEXT NOT NULL,
	updated_at     TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE schemas (
	action     TEXT NOT NULL,
	version    INTEGER NOT NULL,
	body       TEXT NOT NULL, -- JSON: targets, actor, metadata
	created_at TEXT NOT NULL,
	PRIMARY KEY (action, version)
) WITHOUT ROWID;

-- seq is the global commit order; within an organization it grows with idx,
-- so every secondary index below ends in commit order and serves
-- "newest first" without a sort.
CREATE TABLE events (
	seq             INTEGER PRIMARY KEY,
	organization_id TEXT NOT NULL,
	idx             INTEGER NOT NULL,
	id              TEXT NOT NULL,
	action          TEXT NOT NULL,
	actor_id        TEXT NOT NULL,
	actor_type      TEXT NOT NULL,
	actor_name      TEXT NOT NULL,
	occurred_at     INTEGER NOT NULL,
	data            TEXT NOT NULL -- the stored event as JSON
);
CREATE UNIQUE INDEX events_org_idx ON events (organization_id, idx);
CREATE UNIQUE INDEX events_id ON events (id);
CREATE INDEX events_org_action ON events (organization_id, action);
CREATE INDEX events_org_actor ON events (organization_id, actor_id);
CREATE INDEX events_org_occurred ON events (organization_id, occurred_at);

CREATE TABLE event_targets (
	organization_id TEXT NOT NULL,
	target_id       TEXT NOT NULL,
	target_type     TEXT NOT NULL,
	seq             INTEGER NOT NULL
);
CREATE INDEX event_targets_id ON event_targets (organization_id, target_id, seq);
CREATE INDEX event_targets_type ON event_targets (organization_id, target_type, seq);

-- Full-text index for q: contentless, rowid = events.seq.
CREATE VIRTUAL TABLE events_fts USING fts5 (body, content = '', contentless_delete = 1);

-- De-duplication of retried and identical events for 24 hours.
CREATE TABLE idempotency (
	organization_id TEXT NOT NULL,
	key_hash        BLOB NOT NULL,
	event_id        TEXT NOT NULL,
	idx             INTEGER NOT NULL,
	created_at      INTEGER NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (organization_id, key_hash)
) WITHOUT ROWID;
