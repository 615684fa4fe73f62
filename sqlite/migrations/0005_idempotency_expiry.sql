-- De-duplication entries live 24 hours; the maintenance loop deletes older
-- ones in created_at order.
CREATE INDEX idempotency_created ON idempotency (created_at);
CREATE INDEX idempotent_responses_created ON idempotent_responses (created_at);
