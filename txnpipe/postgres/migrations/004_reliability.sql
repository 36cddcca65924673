-- 004 (txnpipe 0.4): what no input, fault or second run may break.
-- A stream pins its input's version when it starts: the S3 version id, or (a bucket
-- without versions) the ETag; NULL for streams started before.
ALTER TABLE txnpipe.chunker_state ADD COLUMN IF NOT EXISTS input_version_id text,
                                  ADD COLUMN IF NOT EXISTS input_etag text;
-- The importance rows read and skipped (SPEC 2.2) when a stream's weights were loaded.
ALTER TABLE txnpipe.detector_state ADD COLUMN IF NOT EXISTS weights_rows bigint,
                                   ADD COLUMN IF NOT EXISTS weights_skipped bigint;
-- Weights are found by a hash of their key, not a b-tree over the three texts: those may
-- hold up to 3 KB together, more than a b-tree entry can, and a type is any length. A
-- collision only costs a comparison: every look-up also compares the three texts. The unit
-- separator keeps ('a', 'b') and ('ab', '') apart.
CREATE OR REPLACE FUNCTION txnpipe.weight_key(customer text, merchant text, kind text)
RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN hashtextextended(customer || E'\x1f' || merchant || E'\x1f' || kind, 0);
ALTER TABLE txnpipe.weights DROP CONSTRAINT IF EXISTS weights_pkey;
CREATE INDEX IF NOT EXISTS weights_by_key
    ON txnpipe.weights (source_id, txnpipe.weight_key(customer, merchant, kind));
-- Which local run (txnpipe run) holds a source: the hold itself is an advisory lock on the
-- run's own connection (lease.py); this row only names its holder for a refused run.
CREATE TABLE IF NOT EXISTS txnpipe.run_leases (
    source_id   int PRIMARY KEY,
    holder      text NOT NULL,
    since       timestamptz NOT NULL DEFAULT now()
);
DROP TABLE IF EXISTS txnpipe.schema_version;  -- a marker of unreleased builds, now migrations
