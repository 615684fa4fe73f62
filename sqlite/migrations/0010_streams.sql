-- Log streams (SPEC §10): where an organization's events are delivered,
-- how far delivery got (cursor) and which node delivers (claim, lease).
CREATE TABLE streams (
	organization_id TEXT NOT NULL,
	id              TEXT NOT NULL,
	type            TEXT NOT NULL,
	name            TEXT NOT NULL,
	config          TEXT NOT NULL,              -- JSON of the settings that are not secret
	sealed          BLOB NOT NULL,              -- the secrets, AES-256-GCM
	secret_fields   TEXT NOT NULL,              -- JSON list of the secrets that are set
	state           TEXT NOT NULL,              -- active, error, invalid, inactive
	last_error      TEXT NOT NULL DEFAULT '',
	last_error_at   INTEGER,                    -- Unix nanoseconds
	cursor          INTEGER NOT NULL,           -- the index of the next event to deliver
	delivered       INTEGER NOT NULL DEFAULT 0,
	last_synced_at  INTEGER,
	retry_at        INTEGER,
	generation      INTEGER NOT NULL DEFAULT 1, -- grows with every change through the API
	claim           TEXT NOT NULL DEFAULT '',
	lease_until     INTEGER NOT NULL DEFAULT 0, -- Unix nanoseconds
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	PRIMARY KEY (organization_id, id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX streams_id ON streams (id);
CREATE INDEX streams_due ON streams (lease_until) WHERE state <> 'inactive';
