-- Trail's first schema on PostgreSQL.
--
-- Every table whose rows belong to an organization leads its primary key
-- and every index with organization_id, so that the schema can be
-- distributed by it (Citus: distributed tables; the instance-wide
-- catalogues actions, schemas and idempotent_responses would be reference
-- tables). Text compares byte by byte (COLLATE "C"), whatever the
-- database's locale: keys page in the same order as on SQLite, and an
-- action prefix "a.*" is the range ['a.', 'a/'). events.occurred_at is Unix nanoseconds, as the API's times have
-- nine fractional digits and timestamptz keeps six.

CREATE TABLE organizations (
	id             text COLLATE "C" PRIMARY KEY, -- the organization_id
	name           text COLLATE "C" NOT NULL,
	retention_days integer NOT NULL DEFAULT 365,
	next_index     bigint NOT NULL DEFAULT 0, -- the index the next event gets; its row lock sequences appends
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL
);

INSERT INTO organizations (id, name, created_at, updated_at) VALUES ('org_system', 'Trail system', now(), now());

CREATE TABLE api_keys (
	organization_id text COLLATE "C" NOT NULL DEFAULT '', -- '' for an instance-wide key
	id              text COLLATE "C" NOT NULL,
	name            text COLLATE "C" NOT NULL,
	permissions     text COLLATE "C" NOT NULL,            -- JSON array
	prefix          text COLLATE "C" NOT NULL,            -- first characters of the secret, to find the row
	secret_hash     bytea NOT NULL,           -- SHA-256 of the secret
	rate_limit      integer,
	created_at      timestamptz NOT NULL,
	revoked_at      timestamptz,
	PRIMARY KEY (organization_id, id)
);
CREATE INDEX api_keys_id ON api_keys (id);
CREATE INDEX api_keys_prefix ON api_keys (prefix);
-- A secret names one key: nodes that bootstrap the same TRAIL_ADMIN_KEY at
-- once create it once, and a revoked key's secret cannot come back.
CREATE UNIQUE INDEX api_keys_secret ON api_keys (organization_id, secret_hash);

CREATE TABLE actions (
	name           text COLLATE "C" PRIMARY KEY,
	latest_version integer NOT NULL,
	created_at     timestamptz NOT NULL,
	updated_at     timestamptz NOT NULL
);

CREATE TABLE schemas (
	action     text COLLATE "C" NOT NULL,
	version    integer NOT NULL,
	body       text COLLATE "C" NOT NULL, -- JSON: targets, actor, metadata
	created_at timestamptz NOT NULL,
	PRIMARY KEY (action, version)
);

-- Events are range-partitioned by received_at, one partition a month,
-- created ahead by the maintenance task; a retention purge can drop whole
-- partitions. A partitioned table's unique keys must hold the partition
-- key, so the primary key is (organization_id, idx, received_at); idx is
-- unique within an organization because it is assigned under the row lock
-- of the organization's head. Every index ends in idx, the commit order, so
-- that "newest first" reads an index backwards and stops at the page.
CREATE TABLE events (
	organization_id text COLLATE "C" NOT NULL,
	idx             bigint NOT NULL,
	received_at     timestamptz NOT NULL,
	id              text COLLATE "C" NOT NULL,
	action          text COLLATE "C" NOT NULL,
	actor_id        text COLLATE "C" NOT NULL,
	actor_type      text COLLATE "C" NOT NULL,
	actor_name      text COLLATE "C" NOT NULL,
	occurred_at     bigint NOT NULL,  -- Unix nanoseconds
	occurred_day    integer NOT NULL, -- occurred_at in whole UTC days since 1970
	target_ids      text[] COLLATE "C" NOT NULL,
	target_types    text[] COLLATE "C" NOT NULL,
	search          tsvector NOT NULL, -- the event's search words (built by Trail, not by a text parser)
	data            text COLLATE "C" NOT NULL,    -- the stored event as JSON
	PRIMARY KEY (organization_id, idx, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX events_org_action ON events (organization_id, action, idx);
CREATE INDEX events_org_actor ON events (organization_id, actor_id, idx);
CREATE INDEX events_org_actor_name ON events (organization_id, actor_name, idx);
CREATE INDEX events_org_actor_type ON events (organization_id, actor_type, idx);
CREATE INDEX events_org_day ON events (organization_id, occurred_day, idx) INCLUDE (occurred_at);
CREATE INDEX events_id ON events (id);
CREATE INDEX events_search ON events USING gin (search);

-- One row per target of an event, to read one target's events in index
-- order. (events.target_ids and target_types filter the rows that another
-- index drives.)
CREATE TABLE event_targets (
	organization_id text COLLATE "C" NOT NULL,
	target_id       text COLLATE "C" NOT NULL,
	target_type     text COLLATE "C" NOT NULL,
	idx             bigint NOT NULL,
	received_at     timestamptz NOT NULL -- the event's, to prune partitions in joins
) PARTITION BY RANGE (received_at);
CREATE INDEX event_targets_id ON event_targets (organization_id, target_id, idx);
CREATE INDEX event_targets_type ON event_targets (organization_id, target_type, idx);

-- De-duplication of retried and identical events for 24 hours.
CREATE TABLE idempotency (
	organization_id text COLLATE "C" NOT NULL,
	key_hash        bytea NOT NULL,
	event_id        text COLLATE "C" NOT NULL,
	idx             bigint NOT NULL,
	created_at      bigint NOT NULL, -- Unix nanoseconds
	PRIMARY KEY (organization_id, key_hash)
);
-- created_at grows with time: a BRIN index finds the expired entries and
-- costs little to maintain.
CREATE INDEX idempotency_created ON idempotency USING brin (created_at);

-- The actions each organization has used, so that an action prefix
-- ("alert_route.*") expands to exact actions.
CREATE TABLE org_actions (
	organization_id text COLLATE "C" NOT NULL,
	action          text COLLATE "C" NOT NULL,
	PRIMARY KEY (organization_id, action)
);

-- Responses of non-event POSTs sent with an Idempotency-Key, replayed to
-- retries for 24 hours.
CREATE TABLE idempotent_responses (
	key_hash   bytea PRIMARY KEY,
	status     integer NOT NULL,
	body       bytea NOT NULL,
	created_at bigint NOT NULL -- Unix nanoseconds
);
CREATE INDEX idempotent_responses_created ON idempotent_responses (created_at);
