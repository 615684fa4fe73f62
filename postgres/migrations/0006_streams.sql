-- Log streams (SPEC §10): where an organization's events are delivered,
-- how far delivery got (cursor) and which node delivers (claim, lease).
CREATE TABLE streams (
	organization_id text COLLATE "C" NOT NULL,
	id              text COLLATE "C" NOT NULL,
	type            text NOT NULL,
	name            text NOT NULL,
	config          jsonb NOT NULL,             -- the settings that are not secret
	sealed          bytea NOT NULL,             -- the secrets, AES-256-GCM
	secret_fields   jsonb NOT NULL,             -- the secrets that are set
	state           text NOT NULL,              -- active, error, invalid, inactive
	last_error      text NOT NULL DEFAULT '',
	last_error_at   timestamptz,
	cursor          bigint NOT NULL,            -- the index of the next event to deliver
	delivered       bigint NOT NULL DEFAULT 0,
	last_synced_at  timestamptz,
	retry_at        timestamptz,
	generation      bigint NOT NULL DEFAULT 1,  -- grows with every change through the API
	claim           text NOT NULL DEFAULT '',
	lease_until     timestamptz NOT NULL DEFAULT '-infinity',
	created_at      timestamptz NOT NULL,
	updated_at      timestamptz NOT NULL,
	PRIMARY KEY (organization_id, id)
);
CREATE INDEX streams_id ON streams (id);
CREATE INDEX streams_due ON streams (lease_until) WHERE state <> 'inactive';
