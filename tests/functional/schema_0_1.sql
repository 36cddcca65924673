-- The tables txnpipe 0.1 made differently from today's schema.sql (the others are the same
-- and are created by ensure_schema): a database to upgrade in place.
CREATE SCHEMA IF NOT EXISTS txnpipe;

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

