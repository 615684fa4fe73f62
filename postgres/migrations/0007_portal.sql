-- Portal links and the web sessions they open (SPEC §9). A link is
-- opened once; its row then holds the session. Only SHA-256 hashes of the
-- link's token and of the session's secret are kept.
CREATE TABLE portal_links (
	id                 text COLLATE "C" PRIMARY KEY,
	organization_id    text COLLATE "C" NOT NULL,
	intent             text NOT NULL,
	user_id            text NOT NULL,
	user_email         text NOT NULL,
	user_name          text NOT NULL,
	role               text NOT NULL,      -- owner, admin, member
	token_hash         bytea NOT NULL UNIQUE,
	created_at         timestamptz NOT NULL,
	expires_at         timestamptz NOT NULL, -- the link's
	opened_at          timestamptz,
	session_hash       bytea UNIQUE,
	session_expires_at timestamptz,
	ended_at           timestamptz
);
-- Rows whose link and session are both over are deleted.
CREATE INDEX portal_links_over ON portal_links ((coalesce(session_expires_at, expires_at)));
