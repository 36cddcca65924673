-- Per-pair deltas per chunk, and each pair's running state (core.rules.aggregates.PairState)
-- at every chunk that touched it; the input table is registered as "tx".
t AS (SELECT * FROM tx WHERE chunk <= $last),
delta AS (
    SELECT merchant, customer, chunk,
           count(*) AS dn, count(weight) AS dwc,
           coalesce(sum(weight), 0.0) AS dws, sum(value) AS dvs
    FROM t GROUP BY merchant, customer, chunk
),
state AS (
    SELECT merchant, customer, chunk,
           CAST(sum(dn) OVER w AS BIGINT) AS n,
           CAST(sum(dwc) OVER w AS BIGINT) AS weighted_txns,
           sum(dws) OVER w AS weight_sum,
           sum(dvs) OVER w AS value_sum
    FROM delta
    WINDOW w AS (PARTITION BY merchant, customer ORDER BY chunk
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
),
since AS (
    SELECT merchant, customer, min(chunk) AS since FROM delta GROUP BY merchant, customer
)
