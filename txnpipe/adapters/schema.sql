-- txnpipe state. Every table is keyed by source_id, so one database serves many streams.
-- Text is compared by code point (COLLATE "C"): the spec orders detections that way, and
-- it keeps index look-ups cheap.
CREATE SCHEMA IF NOT EXISTS txnpipe;

-- Which version of this file the database holds: a connection whose database is current
-- runs none of the statements below (the functions' database roles may not).
CREATE TABLE IF NOT EXISTS txnpipe.schema_version (
    version     int NOT NULL
);

CREATE TABLE IF NOT EXISTS txnpipe.sources (
    source_id   serial PRIMARY KEY,
    name        text COLLATE "C" NOT NULL UNIQUE
);

-- Mechanism X: the pointer.
CREATE TABLE IF NOT EXISTS txnpipe.chunker_state (
    source_id   int PRIMARY KEY REFERENCES txnpipe.sources,
    input_key   text COLLATE "C" NOT NULL,
    header      bytea NOT NULL,
    started_at  timestamptz NOT NULL,
    next_chunk  int NOT NULL,
    next_offset bigint NOT NULL,
    records     bigint NOT NULL,
    done        boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    input_version_id text,  -- the input as it was at the stream's start: its S3 version id,
    input_etag  text        -- or (unversioned bucket) its ETag; NULL before txnpipe 0.4
);
ALTER TABLE txnpipe.chunker_state ADD COLUMN IF NOT EXISTS input_version_id text,
                                  ADD COLUMN IF NOT EXISTS input_etag text;

-- Mechanism Y: progress, arrivals, history, aggregates, the detection outbox.
CREATE TABLE IF NOT EXISTS txnpipe.detector_state (
    source_id      int PRIMARY KEY REFERENCES txnpipe.sources,
    weights_loaded boolean NOT NULL DEFAULT false,
    weights_layout text COLLATE "C",
    next_chunk     int NOT NULL DEFAULT 0,
    total_chunks   int,
    total_records  bigint,
    detections     bigint NOT NULL DEFAULT 0,
    files_written  int NOT NULL DEFAULT 0,
    upgrade_through int NOT NULL DEFAULT -1,  -- PatId1 known for every point up to here
    upgrade_run    text,                       -- the batch run in flight, if any
    upgrade_first  int,
    upgrade_last   int,
    weights_rows   bigint,  -- importance rows read, and those skipped (SPEC 2.2), at the load
    weights_skipped bigint
);
ALTER TABLE txnpipe.detector_state ADD COLUMN IF NOT EXISTS weights_rows bigint,
                                   ADD COLUMN IF NOT EXISTS weights_skipped bigint;

CREATE TABLE IF NOT EXISTS txnpipe.arrivals (
    source_id   int NOT NULL,
    chunk       int NOT NULL,
    arrived_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, chunk)
);

CREATE TABLE IF NOT EXISTS txnpipe.chunk_log (
    source_id   int NOT NULL,
    chunk       int NOT NULL,
    arrived_at  timestamptz,
    y_start     timestamptz NOT NULL,
    applied_at  timestamptz NOT NULL,
    records     int NOT NULL,
    rejects     int NOT NULL,
    detections  int NOT NULL,
    PRIMARY KEY (source_id, chunk)
);

-- One row per importance key (the load keeps each key's mean). Found through a hash of the
-- key, not a b-tree over the three texts: those may hold up to 3 KB together, more than a
-- b-tree entry can (an index entry must fit a third of a page), and a type is any length.
CREATE TABLE IF NOT EXISTS txnpipe.weights (
    source_id   int NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    merchant    text COLLATE "C" NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    weight      double precision NOT NULL
);
DO $$
BEGIN
    IF to_regprocedure('txnpipe.weight_key(text, text, text)') IS NULL THEN
        -- the unit separator keeps ('a', 'b') and ('ab', '') apart; a collision of the hash
        -- only costs a comparison, since every look-up also compares the three texts
        CREATE FUNCTION txnpipe.weight_key(customer text, merchant text, kind text)
        RETURNS bigint LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
        RETURN hashtextextended(customer || E'\x1f' || merchant || E'\x1f' || kind, 0);
    END IF;
    IF to_regclass('txnpipe.weights_by_key') IS NULL THEN
        ALTER TABLE txnpipe.weights DROP CONSTRAINT IF EXISTS weights_pkey;
        CREATE INDEX weights_by_key
            ON txnpipe.weights (source_id, txnpipe.weight_key(customer, merchant, kind));
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS txnpipe.history (
    source_id   int NOT NULL,
    record      bigint NOT NULL,
    chunk       int NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    merchant    text COLLATE "C" NOT NULL,
    value       double precision NOT NULL,
    gender      text COLLATE "C" NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    weight      double precision,  -- the record's importance weight, NULL when it has none
    PRIMARY KEY (source_id, record)
);

CREATE TABLE IF NOT EXISTS txnpipe.customers (
    source_id   int NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    gender      text COLLATE "C" NOT NULL,  -- from the customer's first accepted record
    first_record bigint,
    PRIMARY KEY (source_id, customer)
);

CREATE TABLE IF NOT EXISTS txnpipe.pairs (
    source_id   int NOT NULL,
    merchant    text COLLATE "C" NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    n           int NOT NULL,
    value_sum   double precision NOT NULL,
    weight_sum  double precision NOT NULL,
    weighted    int NOT NULL,
    w           double precision,  -- the mean weight, NULL while weighted = 0
    w_before    double precision,  -- w before the row's last update (moves the weight cursor)
    n_before    int NOT NULL DEFAULT 0,  -- n before the row's last update (moves the count cursor)
    top_n       int,               -- n, when n reaches the merchant's count_floor
    first_chunk int NOT NULL DEFAULT -1,  -- the chunk that created the pair
    PRIMARY KEY (source_id, merchant, customer)
) WITH (fillfactor = 80);
-- Every chunk updates about as many pairs as it has records, so those updates must stay
-- HOT (no index entry rewritten): no index holds n, and w only changes when a pair's mean
-- weight does. PatId1 still reads the value at a rank of a merchant's counts (from the
-- top: 1%) and of its mean weights (from the bottom: 20%), and the customers at the top
-- counts, by index range scans instead of sorting every customer on every chunk: top_n
-- copies n only for the few pairs at or above a floor set a little under the count
-- threshold. Both indexes are partial, so the planner never picks them for a
-- (merchant, customer) lookup; they are made below, after the upgrade of older databases.

-- Reading a rank from the end of its index on every chunk would cost more as a merchant
-- gains customers (the weight rank is 20% deep, the count rank 1%). A cursor per rank
-- remembers where the last evaluation found it: the key there ((w, customer) from the
-- bottom, (top_n, customer) from the top) and how many keys come before it, so the next
-- evaluation only counts the keys the chunk moved across it and steps from there.
CREATE TABLE IF NOT EXISTS txnpipe.merchants (
    source_id   int NOT NULL,
    merchant    text COLLATE "C" NOT NULL,
    n           bigint NOT NULL,
    customers   int NOT NULL,
    weighted    int NOT NULL,  -- customers with at least one weighted transaction here
    females     int NOT NULL,
    males       int NOT NULL,
    cursor_w    double precision,
    cursor_customer text COLLATE "C",
    cursor_below int,
    count_cursor_n int,
    count_cursor_customer text COLLATE "C",
    count_cursor_above int,
    count_floor int,  -- pairs of this merchant with n >= count_floor have top_n set
    last_min_n  int,  -- PatId1's thresholds at the merchant's last evaluation (n >= last_min_n
    last_tw     double precision,  -- and w <= last_tw held there), NULL when unknown
    PRIMARY KEY (source_id, merchant)
);

-- Databases made by txnpipe 0.1 (pairs indexed by n and by weight_sum / weighted, history
-- without weights; every row in it is applied already): the
-- new columns are filled as the code would have, the cursors and floors start empty (the
-- first evaluation of a merchant reads its ranks in full once).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM information_schema.columns
                   WHERE table_schema = 'txnpipe' AND table_name = 'pairs' AND column_name = 'w')
    THEN
        ALTER TABLE txnpipe.pairs ADD COLUMN w double precision,
                                  ADD COLUMN w_before double precision,
                                  ADD COLUMN top_n int,
                                  ADD COLUMN first_chunk int NOT NULL DEFAULT -1;
        ALTER TABLE txnpipe.pairs SET (fillfactor = 80);
        ALTER TABLE txnpipe.history ADD COLUMN weight double precision;
        ALTER TABLE txnpipe.customers ADD COLUMN first_record bigint;
        UPDATE txnpipe.pairs SET w = weight_sum / weighted WHERE weighted > 0;
        DROP INDEX IF EXISTS txnpipe.pairs_by_weight;
        DROP INDEX IF EXISTS txnpipe.pairs_by_count;
        ALTER TABLE txnpipe.merchants ADD COLUMN cursor_w double precision,
                                      ADD COLUMN cursor_customer text COLLATE "C",
                                      ADD COLUMN cursor_below int,
                                      ADD COLUMN count_floor int;
    END IF;
END $$;
-- Databases made by txnpipe 0.2: no count cursor nor last thresholds yet. Every change is
-- made only when missing, so that connecting to an up-to-date database takes no lock on
-- these tables (a DDL statement would, even with IF NOT EXISTS).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM information_schema.columns
                   WHERE table_schema = 'txnpipe' AND table_name = 'pairs'
                     AND column_name = 'n_before')
    THEN
        ALTER TABLE txnpipe.pairs ADD COLUMN n_before int NOT NULL DEFAULT 0;
        ALTER TABLE txnpipe.merchants ADD COLUMN count_cursor_n int,
                                      ADD COLUMN count_cursor_customer text COLLATE "C",
                                      ADD COLUMN count_cursor_above int,
                                      ADD COLUMN last_min_n int,
                                      ADD COLUMN last_tw double precision;
        DROP INDEX IF EXISTS txnpipe.pairs_by_top_count;
    END IF;
    IF to_regclass('txnpipe.pairs_by_top_key') IS NULL THEN
        CREATE INDEX pairs_by_top_key
            ON txnpipe.pairs (source_id, merchant, top_n, customer) WHERE top_n IS NOT NULL;
    END IF;
    IF to_regclass('txnpipe.pairs_by_mean_weight') IS NULL THEN
        CREATE INDEX pairs_by_mean_weight
            ON txnpipe.pairs (source_id, merchant, w, customer) WHERE w IS NOT NULL;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS txnpipe.detections (
    source_id   int NOT NULL,
    seq         bigint NOT NULL,
    chunk       int NOT NULL,
    pattern     smallint NOT NULL,
    merchant    text COLLATE "C" NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    y_start     timestamptz NOT NULL,
    detected_at timestamptz NOT NULL,
    PRIMARY KEY (source_id, seq),
    UNIQUE (source_id, pattern, merchant, customer)
);

-- Which local run (``txnpipe run``) holds a source: the hold itself is an advisory lock on
-- the run's own connection (pglease.py); this row only names its holder for a refused run.
CREATE TABLE IF NOT EXISTS txnpipe.run_leases (
    source_id   int PRIMARY KEY,
    holder      text NOT NULL,
    since       timestamptz NOT NULL DEFAULT now()
);
