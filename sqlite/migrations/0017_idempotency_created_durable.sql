-- trail import's de-duplication entries never expire: their created_at
-- is the largest integer (trail.DurableDedupe). The expiry's index leaves
-- them out, so that an import does not insert each entry at a random
-- place of it as well (they all share one created_at, ordered by key).
DROP INDEX idempotency_created;
CREATE INDEX idempotency_created ON idempotency (created_at) WHERE created_at < 9223372036854775807;
