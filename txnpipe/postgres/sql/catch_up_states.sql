-- A batch of landed chunks (catch_up.py), before its aggregates are upserted: each pair and
-- merchant the batch touches, at every chunk of it that touches them, as the per-chunk apply
-- leaves them (core.rules.aggregates: PairState, MerchantState). Each running state is a
-- window sum over the stored state (a row before the batch, chunk -1) and the batch's
-- per-chunk deltas, in chunk order, so its float sums are added in the order the per-chunk
-- apply adds them. No two CTEs are joined (the planner, blind to their sizes, would compare
-- their rows pairwise): the stored rows are read by index probes, then appended. A threshold
-- rule's first point in the batch is its first state there that meets the condition (one
-- branch per rule, catch_up_pair_rule.sql and catch_up_merchant_rule.sql, rendered by
-- catch_up.py); a key detected before the batch is left out when detections are recorded.
WITH delta AS MATERIALIZED (
    SELECT merchant, customer, chunk, count(*) AS dn, sum(value) AS dvs,
           coalesce(sum(weight), 0) AS dws, count(weight) AS dwc
    FROM txnpipe.history
    WHERE source_id = %(sid)s AND record >= %(lo)s AND record < %(hi)s
    GROUP BY merchant, customer, chunk
), stored AS MATERIALIZED (
    -- each touched pair's stored state (none for a pair the batch creates)
    SELECT d.merchant, d.customer, d.since, p.n, p.value_sum, p.weight_sum, p.weighted_txns
    FROM (SELECT merchant, customer, min(chunk) AS since FROM delta
          GROUP BY merchant, customer) d
    LEFT JOIN LATERAL (SELECT n, value_sum, weight_sum, weighted_txns FROM txnpipe.pairs p
                       WHERE p.source_id = %(sid)s AND p.merchant = d.merchant
                         AND p.customer = d.customer
                       OFFSET 0) p ON true  -- an index probe, whatever the planner guesses
), state AS (
    SELECT * FROM (
        SELECT merchant, customer, chunk, (sum(dn) OVER w)::bigint AS n,
               sum(dvs) OVER w AS value_sum, sum(dws) OVER w AS weight_sum,
               (sum(dwc) OVER w)::bigint AS weighted_txns
        FROM (SELECT merchant, customer, -1 AS chunk, n AS dn, value_sum AS dvs,
                     weight_sum AS dws, weighted_txns AS dwc
              FROM stored WHERE n IS NOT NULL
              UNION ALL
              SELECT merchant, customer, chunk, dn, dvs, dws, dwc FROM delta) u
        WINDOW w AS (PARTITION BY merchant, customer ORDER BY chunk)) s
    WHERE chunk >= 0
), newcomers AS (
    -- a pair the batch creates gives its merchant a customer, of that customer's gender
    SELECT s.merchant, s.since AS chunk, g.gender
    FROM stored s
    CROSS JOIN LATERAL (SELECT gender FROM txnpipe.customers c
                        WHERE c.source_id = %(sid)s AND c.customer = s.customer
                        OFFSET 0) g
    WHERE s.n IS NULL
), merchant_states AS (
    SELECT * FROM (
        SELECT merchant, chunk, (sum(dn) OVER w)::bigint AS n,
               (sum(df) OVER w)::bigint AS females, (sum(dm) OVER w)::bigint AS males
        FROM (SELECT merchant, chunk, sum(dn) AS dn, sum(df) AS df, sum(dm) AS dm
              FROM (SELECT merchant, -1 AS chunk, n AS dn, females AS df, males AS dm
                    FROM txnpipe.merchants WHERE source_id = %(sid)s
                    UNION ALL
                    SELECT merchant, chunk, dn, 0, 0 FROM delta
                    UNION ALL
                    SELECT merchant, chunk, 0, (gender = 'F')::int, (gender = 'M')::int
                    FROM newcomers) u
              GROUP BY merchant, chunk) m
        WINDOW w AS (PARTITION BY merchant ORDER BY chunk)) s
    WHERE chunk >= 0
)
