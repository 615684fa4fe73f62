-- A stored response belongs to the organization of the API key that sent
-- the request ('' for an instance-wide key), which leads its key: on Citus
-- the table is distributed by it (a reference table would be written on
-- every node by every request that carries an Idempotency-Key).
ALTER TABLE idempotent_responses ADD COLUMN organization_id text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE idempotent_responses DROP CONSTRAINT idempotent_responses_pkey;
ALTER TABLE idempotent_responses ADD PRIMARY KEY (organization_id, key_hash);
