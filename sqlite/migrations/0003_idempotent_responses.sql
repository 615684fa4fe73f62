-- Responses of non-event POSTs sent with an Idempotency-Key, replayed to
-- retries for 24 hours.
CREATE TABLE idempotent_responses (
	key_hash   BLOB PRIMARY KEY,
	status     INTEGER NOT NULL,
	body       BLOB NOT NULL,
	created_at INTEGER NOT NULL -- Unix nanoseconds
) WITHOUT ROWID;
