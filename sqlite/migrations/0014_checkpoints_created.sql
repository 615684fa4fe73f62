-- A purge looks for the newest checkpoint signed before its cutoff (SPEC §6):
-- by organization and creation time.
CREATE INDEX checkpoints_created ON checkpoints (organization_id, created_at);
