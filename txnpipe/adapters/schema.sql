-- txnpipe state. Every table is keyed by source_id, so one database serves many streams.
-- Text is compared by code point (COLLATE "C"): the spec orders detections that way, and
-- it keeps index look-ups cheap.
CREATE SCHEMA IF NOT EXISTS txnpipe;

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
    updated_at  timestamptz NOT NULL DEFAULT now()
);

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
    upgrade_last   int
);

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

CREATE TABLE IF NOT EXISTS txnpipe.weights (
    source_id   int NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    merchant    text COLLATE "C" NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    weight      double precision NOT NULL,
    PRIMARY KEY (source_id, customer, merchant, kind)
);

CREATE TABLE IF NOT EXISTS txnpipe.history (
    source_id   int NOT NULL,
    record      bigint NOT NULL,
    chunk       int NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    merchant    text COLLATE "C" NOT NULL,
    value       double precision NOT NULL,
    gender      text COLLATE "C" NOT NULL,
    kind        text COLLATE "C" NOT NULL,
    PRIMARY KEY (source_id, record)
);

CREATE TABLE IF NOT EXISTS txnpipe.customers (
    source_id   int NOT NULL,
    customer    text COLLATE "C" NOT NULL,
    gender      text COLLATE "C" NOT NULL,
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
    w           double precision,  -- weight_sum / weighted, NULL while weighted = 0
    w_before    double precision,  -- w before the row's last update (moves the rank cursor)
    first_chunk int NOT NULL DEFAULT -1,  -- the chunk that created the pair
    PRIMARY KEY (source_id, merchant, customer)
);
-- PatId1 reads the value at a rank of a merchant's counts (from the top: 1%) and of its
-- mean weights (from the bottom: 20%), and the customers at the top counts, by index range
-- scans instead of sorting every customer on every chunk. Both are partial so that the
-- planner never picks them for a (merchant, customer) lookup.
CREATE INDEX IF NOT EXISTS pairs_by_count
    ON txnpipe.pairs (source_id, merchant, n) WHERE n > 0;

-- The weight rank is 20% deep: reading it from the bottom on every chunk would cost more
-- as a merchant gains customers. A cursor remembers where the last evaluation found it:
-- the key (w, customer) there and how many keys lie below it, so the next evaluation only
-- counts the keys the chunk moved across it and steps from there.
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
    PRIMARY KEY (source_id, merchant)
);

-- Databases made by txnpipe 0.1 (pairs indexed by the expression weight_sum / weighted):
-- the mean weight becomes a column, computed as the expression was, and the cursors start
-- empty (the first evaluation reads the rank from the bottom once).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM information_schema.columns
                   WHERE table_schema = 'txnpipe' AND table_name = 'pairs' AND column_name = 'w')
    THEN
        ALTER TABLE txnpipe.pairs ADD COLUMN w double precision,
                                  ADD COLUMN w_before double precision,
                                  ADD COLUMN first_chunk int NOT NULL DEFAULT -1;
        UPDATE txnpipe.pairs SET w = weight_sum / weighted WHERE weighted > 0;
        DROP INDEX IF EXISTS txnpipe.pairs_by_weight;
        ALTER TABLE txnpipe.merchants ADD COLUMN cursor_w double precision,
                                      ADD COLUMN cursor_customer text COLLATE "C",
                                      ADD COLUMN cursor_below int;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS pairs_by_mean_weight
    ON txnpipe.pairs (source_id, merchant, w, customer) WHERE w IS NOT NULL;

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

