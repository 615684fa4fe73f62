-- Portal links and the web sessions they open (SPEC §9). A link is
-- opened once; its row then holds the session. Only SHA-256 hashes of the
-- link's token and of the session's secret are kept.
CREATE TABLE portal_links (
	id                 TEXT PRIMARY KEY,
	organization_id    TEXT NOT NULL,
	intent             TEXT NOT NULL,
	user_id            TEXT NOT NULL,
	user_email         TEXT NOT NULL,
	user_name          TEXT NOT NULL,
	role               TEXT NOT NULL,      -- owner, admin, member
	token_hash         BLOB NOT NULL UNIQUE,
	created_at         INTEGER NOT NULL,   -- Unix nanoseconds
	expires_at         INTEGER NOT NULL,   -- the link's
	opened_at          INTEGER,
	session_hash       BLOB UNIQUE,
	session_expires_at INTEGER,
	ended_at           INTEGER
) WITHOUT ROWID;
-- Rows whose link and session are both over are deleted.
CREATE INDEX portal_links_over ON portal_links (coalesce(session_expires_at, expires_at));
