-- 001: the first layout (txnpipe 0.1). Every table is keyed by source_id, so one database
-- serves many streams. Text is compared by code point (COLLATE "C"): the spec orders
-- detections that way, and it keeps index look-ups cheap.
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
    PRIMARY KEY (source_id, merchant, customer)
);
-- PatId1 reads two ranks of a merchant's counts and of its mean weights, and the customers
-- at the top counts: index range scans instead of sorting every customer on every chunk.
-- Both are partial so that the planner never picks them for a (merchant, customer) lookup.
CREATE INDEX IF NOT EXISTS pairs_by_count
    ON txnpipe.pairs (source_id, merchant, n) WHERE n > 0;
CREATE INDEX IF NOT EXISTS pairs_by_weight
    ON txnpipe.pairs (source_id, merchant, (weight_sum / weighted)) WHERE weighted > 0;

CREATE TABLE IF NOT EXISTS txnpipe.merchants (
    source_id   int NOT NULL,
    merchant    text COLLATE "C" NOT NULL,
    n           bigint NOT NULL,
    customers   int NOT NULL,
    weighted    int NOT NULL,  -- customers with at least one weighted transaction here
    females     int NOT NULL,
    males       int NOT NULL,
    PRIMARY KEY (source_id, merchant)
);

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
