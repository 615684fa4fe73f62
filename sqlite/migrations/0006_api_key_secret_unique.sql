-- A secret names one key. Nodes that bootstrap the same TRAIL_ADMIN_KEY at
-- once create it once, and a revoked key's secret cannot come back.
CREATE UNIQUE INDEX api_keys_secret ON api_keys (organization_id, secret_hash);
