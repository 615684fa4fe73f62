-- Named views of an organization's audit log, saved by its owners and
-- admins for all of them (SPEC §9).
CREATE TABLE saved_views (
	organization_id TEXT NOT NULL,
	id              TEXT NOT NULL,
	name            TEXT NOT NULL,
	query           TEXT NOT NULL,
	created_by      TEXT NOT NULL,
	created_at      TEXT NOT NULL,
	PRIMARY KEY (organization_id, id)
) WITHOUT ROWID;
