-- Named views of an organization's audit log, saved by its owners and
-- admins for all of them (SPEC §9).
CREATE TABLE saved_views (
	organization_id text NOT NULL,
	id              text NOT NULL,
	name            text NOT NULL,
	query           text NOT NULL,
	created_by      text NOT NULL,
	created_at      timestamptz NOT NULL,
	PRIMARY KEY (organization_id, id)
);
