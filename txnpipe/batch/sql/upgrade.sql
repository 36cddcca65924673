-- PatId1 at every point (m, k), $first <= k <= $last, where chunk k touched m and N(m) is
-- past the minimum: every customer of m at its latest state with chunk <= k (an ASOF
-- join), the two exact percentiles (quantile_cont), and who meets them.
merchant_state AS (
    SELECT merchant, chunk,
           CAST(sum(dn) OVER (PARTITION BY merchant ORDER BY chunk
                              ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS total
    FROM (SELECT merchant, chunk, sum(dn) AS dn FROM delta GROUP BY merchant, chunk)
),
points AS (
    SELECT merchant, chunk AS k FROM merchant_state
    WHERE total > $min_merchant_txns AND chunk >= $first
),
grid AS (
    SELECT p.merchant, p.k, s.customer
    FROM points p JOIN since s ON s.merchant = p.merchant AND s.since <= p.k
),
at_point AS (
    SELECT g.merchant, g.k, g.customer, CAST(st.n AS DOUBLE) AS n,
           CASE WHEN st.weighted_txns > 0 THEN st.weight_sum / st.weighted_txns END AS w
    FROM grid g ASOF JOIN state st
      ON st.merchant = g.merchant AND st.customer = g.customer AND g.k >= st.chunk
),
thresholds AS (
    SELECT merchant, k, quantile_cont(n, $count_p) AS tn, quantile_cont(w, $weight_p) AS tw
    FROM at_point GROUP BY merchant, k
),
upgrade AS (
    SELECT a.k AS chunk, a.merchant, a.customer
    FROM at_point a JOIN thresholds th ON th.merchant = a.merchant AND th.k = a.k
    WHERE a.w IS NOT NULL AND th.tw IS NOT NULL
      AND a.n >= th.tn - $eps AND a.w <= th.tw + $eps
)
