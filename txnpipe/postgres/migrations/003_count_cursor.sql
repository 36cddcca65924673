-- 003 (txnpipe 0.3): a count cursor like the weight cursor, and each merchant's PatId1
-- thresholds at its last evaluation (an evaluation then reads only the pairs between the
-- last thresholds and the new ones). Both rank indexes are partial, so the planner never
-- picks them for a (merchant, customer) look-up.
ALTER TABLE txnpipe.pairs ADD COLUMN n_before int NOT NULL DEFAULT 0;  -- n before the last update
ALTER TABLE txnpipe.merchants ADD COLUMN count_cursor_n int,
                              ADD COLUMN count_cursor_customer text COLLATE "C",
                              ADD COLUMN count_cursor_above int,
                              ADD COLUMN last_min_n int,  -- n >= last_min_n and w <= last_tw held
                              ADD COLUMN last_tw double precision;  -- there; NULL when unknown
DROP INDEX IF EXISTS txnpipe.pairs_by_top_count;
CREATE INDEX IF NOT EXISTS pairs_by_top_key
    ON txnpipe.pairs (source_id, merchant, top_n, customer) WHERE top_n IS NOT NULL;
CREATE INDEX IF NOT EXISTS pairs_by_mean_weight
    ON txnpipe.pairs (source_id, merchant, w, customer) WHERE w IS NOT NULL;
