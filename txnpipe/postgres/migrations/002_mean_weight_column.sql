-- 002 (txnpipe 0.2): pair updates stay HOT. No index holds n any more, and the mean weight
-- w is a column kept bit for bit while a chunk's weights equal it; top_n copies n only for
-- the pairs at or above the merchant's count floor. Each record's weight is stored with it
-- in the history, and a customer's first record with the customer. The new columns are
-- filled as the code would have; the cursors and floors start empty (the first evaluation
-- of a merchant reads its ranks in full once).
ALTER TABLE txnpipe.pairs ADD COLUMN w double precision,       -- the mean weight, NULL while weighted = 0
                          ADD COLUMN w_before double precision,  -- w before the last update
                          ADD COLUMN top_n int,                  -- n, when n reaches count_floor
                          ADD COLUMN first_chunk int NOT NULL DEFAULT -1;  -- the pair's first chunk
ALTER TABLE txnpipe.pairs SET (fillfactor = 80);
ALTER TABLE txnpipe.history ADD COLUMN weight double precision;  -- NULL when the record has none
ALTER TABLE txnpipe.customers ADD COLUMN first_record bigint;
UPDATE txnpipe.pairs SET w = weight_sum / weighted WHERE weighted > 0;
DROP INDEX IF EXISTS txnpipe.pairs_by_weight;
DROP INDEX IF EXISTS txnpipe.pairs_by_count;
-- A cursor per rank: the key where the last evaluation found the rank, and how many keys
-- come before it, so the next evaluation only counts the keys its chunk moved across it.
ALTER TABLE txnpipe.merchants ADD COLUMN cursor_w double precision,
                              ADD COLUMN cursor_customer text COLLATE "C",
                              ADD COLUMN cursor_below int,
                              ADD COLUMN count_floor int;  -- pairs with n >= it have top_n set
