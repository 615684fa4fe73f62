-- Export chunks are CSV or NDJSON text: compressed with lz4 (PostgreSQL 14
-- and later, when built with it), a chunk is written to TOAST in a fifth of
-- the pages, which is what bounds an export's speed on PostgreSQL. Without
-- lz4 they stay uncompressed (storage EXTERNAL), as before.
DO $$
BEGIN
	EXECUTE 'ALTER TABLE export_chunks ALTER COLUMN data SET COMPRESSION lz4';
	EXECUTE 'ALTER TABLE export_chunks ALTER COLUMN data SET STORAGE EXTENDED';
EXCEPTION WHEN OTHERS THEN
	RAISE NOTICE 'export chunks stay uncompressed: %', SQLERRM;
END
$$;
