-- Every rank PatId1 needs for a chunk, read in one round trip: a page of keys per read.
-- Each read names an index (count: pairs_by_top_key from the top; weight:
-- pairs_by_mean_weight from the bottom) and where its page starts: at the index's first
-- key, on or after a cursor key, or before it (walking back). ranks.py lists the reads.
WITH reads AS (
    SELECT * FROM unnest(%(kind)s::text[], %(merchant)s::text[], %(start)s::text[],
                         %(key)s::float8[], %(customer)s::text[], %(skip)s::int[],
                         %(take)s::int[])
        WITH ORDINALITY AS r(kind, merchant, start, key, customer, skip, take, i)
)
SELECT r.i, k.*
FROM reads r, LATERAL (
    SELECT top_n AS key, customer FROM txnpipe.pairs
    WHERE source_id = %(sid)s AND merchant = r.merchant AND top_n IS NOT NULL
    ORDER BY top_n DESC, customer DESC
    OFFSET r.skip LIMIT r.take) k
WHERE r.kind = 'count' AND r.start = 'first'
UNION ALL
SELECT r.i, k.*
FROM reads r, LATERAL (
    SELECT top_n AS key, customer FROM txnpipe.pairs
    WHERE source_id = %(sid)s AND merchant = r.merchant AND top_n IS NOT NULL
      AND (top_n, customer) <= (r.key::int, r.customer)
    ORDER BY top_n DESC, customer DESC
    OFFSET r.skip LIMIT r.take) k
WHERE r.kind = 'count' AND r.start = 'on'
UNION ALL
SELECT r.i, k.*
FROM reads r, LATERAL (
    SELECT top_n AS key, customer FROM txnpipe.pairs
    WHERE source_id = %(sid)s AND merchant = r.merchant AND top_n IS NOT NULL
      AND (top_n, customer) > (r.key::int, r.customer)
    ORDER BY top_n ASC, customer ASC
    OFFSET r.skip LIMIT r.take) k
WHERE r.kind = 'count' AND r.start = 'before'
UNION ALL
SELECT r.i, k.*
FROM reads r, LATERAL (
    SELECT w AS key, customer FROM txnpipe.pairs
    WHERE source_id = %(sid)s AND merchant = r.merchant AND w IS NOT NULL
    ORDER BY w ASC, customer ASC
    OFFSET r.skip LIMIT r.take) k
WHERE r.kind = 'weight' AND r.start = 'first'
UNION ALL
SELECT r.i, k.*
FROM reads r, LATERAL (
    SELECT w AS key, customer FROM txnpipe.pairs
    WHERE source_id = %(sid)s AND merchant = r.merchant AND w IS NOT NULL
      AND (w, customer) >= (r.key, r.customer)
    ORDER BY w ASC, customer ASC
    OFFSET r.skip LIMIT r.take) k
WHERE r.kind = 'weight' AND r.start = 'on'
UNION ALL
SELECT r.i, k.*
FROM reads r, LATERAL (
    SELECT w AS key, customer FROM txnpipe.pairs
    WHERE source_id = %(sid)s AND merchant = r.merchant AND w IS NOT NULL
      AND (w, customer) < (r.key, r.customer)
    ORDER BY w DESC, customer DESC
    OFFSET r.skip LIMIT r.take) k
WHERE r.kind = 'weight' AND r.start = 'before'
