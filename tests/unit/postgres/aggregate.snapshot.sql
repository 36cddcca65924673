-- A chunk is applied with a few statements over that chunk's rows only, whose plans stay
-- index look-ups and small hashes whatever the row estimates (the planner has no statistics
-- for a CTE, so no statement joins two CTEs row by row). The history and the customers are
-- written already. Every pair the chunk touches is upserted once, and what it was before
-- is read from what the upsert returns (it is new when created by this chunk; its mean
-- weight before is kept in w_before), so no row is looked up twice. Only what the chunk
-- touched can start to hold, so the rows returned (aggregate_*_rule.sql, one branch per
-- rule of the catalogue, rendered by aggregate.py) are the threshold rules' candidates and
-- the touched merchants past PatId1's minimum, whose customers are then re-evaluated (their
-- thresholds move), with how many keys the chunk moved across each cursor.
WITH floors AS MATERIALIZED (
    -- one map of the merchants' count floors, looked up by key for every touched pair (a
    -- list of them would be scanned for each)
    SELECT coalesce(jsonb_object_agg(merchant, count_floor), '{}') AS floor_of
    FROM txnpipe.merchants WHERE source_id = %(sid)s AND count_floor IS NOT NULL
), agg AS (
    SELECT merchant, customer, count(*) AS n, sum(value) AS value_sum,
           coalesce(sum(weight), 0) AS weight_sum, count(weight) AS weighted_txns,
           CASE WHEN min(weight) = max(weight) THEN min(weight)
                ELSE sum(weight) / count(weight) END AS w
    FROM txnpipe.history
    WHERE source_id = %(sid)s AND record >= %(lo)s AND record < %(hi)s
    GROUP BY merchant, customer
), pair_rows AS (
    INSERT INTO txnpipe.pairs AS p
        (source_id, merchant, customer, n, value_sum, weight_sum, weighted_txns, w, top_n,
         first_chunk)
    SELECT %(sid)s, merchant, customer, n, value_sum, weight_sum, weighted_txns, w,
           CASE WHEN n >= ((SELECT floor_of FROM floors) ->> merchant)::int THEN n END,
           %(chunk)s
    FROM agg
    ON CONFLICT (source_id, merchant, customer) DO UPDATE SET
        n = p.n + EXCLUDED.n,
        value_sum = p.value_sum + EXCLUDED.value_sum,
        weight_sum = p.weight_sum + EXCLUDED.weight_sum,
        weighted_txns = p.weighted_txns + EXCLUDED.weighted_txns,
        -- a mean weight that the chunk's weights equal is kept as it is, bit for bit
        w = CASE WHEN EXCLUDED.weighted_txns = 0 THEN p.w
                 WHEN p.w IS NULL OR p.w = EXCLUDED.w THEN EXCLUDED.w
                 ELSE (p.weight_sum + EXCLUDED.weight_sum)
                      / (p.weighted_txns + EXCLUDED.weighted_txns)
            END,
        w_before = p.w,
        n_before = p.n,
        top_n = CASE WHEN p.n + EXCLUDED.n >= ((SELECT floor_of FROM floors)
                                               ->> EXCLUDED.merchant)::int
                     THEN p.n + EXCLUDED.n END
    RETURNING merchant, customer, n, n_before, value_sum, weight_sum, weighted_txns, w, w_before,
              first_chunk = %(chunk)s AS is_new
), merchant_rows AS (
    INSERT INTO txnpipe.merchants AS m
        (source_id, merchant, n, customers, weighted_customers, females, males)
    -- the chunk's records of a pair: n - n_before (n_before is 0 on a new pair)
    SELECT %(sid)s, merchant, sum(n - n_before), count(*) FILTER (WHERE is_new),
           count(*) FILTER (WHERE w IS NOT NULL AND w_before IS NULL),
           count(*) FILTER (WHERE gender = 'F'), count(*) FILTER (WHERE gender = 'M')
    FROM (SELECT merchant, n, n_before, is_new, w, w_before,
                 CASE WHEN is_new THEN (SELECT c.gender FROM txnpipe.customers c
                                        WHERE c.source_id = %(sid)s
                                          AND c.customer = r.customer) END AS gender
          FROM pair_rows r OFFSET 0) r  -- OFFSET 0: each gender looked up once
    GROUP BY merchant
    ON CONFLICT (source_id, merchant) DO UPDATE SET
        n = m.n + EXCLUDED.n,
        customers = m.customers + EXCLUDED.customers,
        weighted_customers = m.weighted_customers + EXCLUDED.weighted_customers,
        females = m.females + EXCLUDED.females,
        males = m.males + EXCLUDED.males,
        -- a chunk applied without evaluating PatId1 here moves keys the cursor never sees
        cursor_w = CASE WHEN %(inline)s THEN m.cursor_w END,
        cursor_customer = CASE WHEN %(inline)s THEN m.cursor_customer END,
        cursor_below = CASE WHEN %(inline)s THEN m.cursor_below END,
        count_cursor_n = CASE WHEN %(inline)s THEN m.count_cursor_n END,
        count_cursor_customer = CASE WHEN %(inline)s THEN m.count_cursor_customer END,
        count_cursor_above = CASE WHEN %(inline)s THEN m.count_cursor_above END,
        last_min_n = CASE WHEN %(inline)s THEN m.last_min_n END,
        last_tw = CASE WHEN %(inline)s THEN m.last_tw END
    RETURNING merchant, n, customers, weighted_customers, females, males,
              cursor_w, cursor_customer, cursor_below, count_cursor_n, count_cursor_customer,
              count_cursor_above, count_floor, last_min_n, last_tw
)
-- A threshold rule over a pair's aggregates: the touched pairs that meet its condition.
SELECT 2, merchant, customer, NULL::int, NULL::int, NULL::int, NULL::float8, NULL::text,
       NULL::int, NULL::int, NULL::text, NULL::int, NULL::int, NULL::float8, NULL::text[],
       NULL::int[], NULL::float8[]
FROM pair_rows
WHERE (n) >= %(child_min_txns)s AND (value_sum / n) < %(child_max_avg_value)s - %(eps)s
UNION ALL
-- A threshold rule over a merchant's aggregates: the touched merchants that meet it.
SELECT 3, merchant, '', NULL::int, NULL::int, NULL::int, NULL::float8, NULL::text,
       NULL::int, NULL::int, NULL::text, NULL::int, NULL::int, NULL::float8, NULL::text[],
       NULL::int[], NULL::float8[]
FROM merchant_rows
WHERE (females) >= %(dei_min_female_customers)s AND (females) < %(dei_max_female_male_ratio)s * (males) - %(eps)s
UNION ALL
-- PatId1's merchants: how many keys the chunk moved across each cursor, and the touched
-- pairs that may newly hold (at or above the floor). Each merchant's touched pairs are
-- gathered into arrays in one pass: joined row by row, the planner (blind to a CTE's
-- size) would compare every touched pair with every merchant.
SELECT 1, r.merchant, NULL, r.customers, r.weighted_customers, r.count_floor,
       r.count_cursor_n, r.count_cursor_customer, r.count_cursor_above + u.count_moved,
       r.cursor_w, r.cursor_customer, r.cursor_below + u.weight_moved,
       r.last_min_n, r.last_tw, u.touched, u.counts, u.weights
FROM merchant_rows r
JOIN (SELECT merchant, array_agg(customer) AS customer, array_agg(n) AS n,
             array_agg(n_before) AS n_before, array_agg(w) AS w, array_agg(w_before) AS w_before
      FROM pair_rows GROUP BY merchant) v ON v.merchant = r.merchant
CROSS JOIN LATERAL (
    SELECT (count(*) FILTER (WHERE (p.n, p.customer) > (r.count_cursor_n, r.count_cursor_customer))
            - count(*) FILTER (WHERE (p.n_before, p.customer)
                                     > (r.count_cursor_n, r.count_cursor_customer)))::int
               AS count_moved,
           (count(*) FILTER (WHERE (p.w, p.customer) < (r.cursor_w, r.cursor_customer))
            - count(*) FILTER (WHERE (p.w_before, p.customer) < (r.cursor_w, r.cursor_customer)))::int
               AS weight_moved,
           array_agg(p.customer) FILTER (WHERE p.n >= r.count_floor AND p.w IS NOT NULL) AS touched,
           array_agg(p.n) FILTER (WHERE p.n >= r.count_floor AND p.w IS NOT NULL) AS counts,
           array_agg(p.w) FILTER (WHERE p.n >= r.count_floor AND p.w IS NOT NULL) AS weights
    FROM unnest(v.customer, v.n, v.n_before, v.w, v.w_before)
         AS p(customer, n, n_before, w, w_before)
) u
WHERE r.n > %(min_merchant_txns)s AND r.weighted_customers > 0
