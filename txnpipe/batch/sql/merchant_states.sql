-- Each merchant's state (core.rules.aggregates.MerchantState) at every chunk that touched
-- it: N(m), and the distinct female and male customers (a customer's gender is that of
-- its first accepted record), counted from the chunk of each customer's first visit.
first_gender AS (
    SELECT customer, arg_min(gender, record) AS gender FROM t GROUP BY customer
),
newcomers AS (
    SELECT s.merchant, s.since AS chunk,
           count(*) FILTER (WHERE g.gender = 'F') AS df,
           count(*) FILTER (WHERE g.gender = 'M') AS dm
    FROM since s JOIN first_gender g ON g.customer = s.customer
    GROUP BY s.merchant, s.since
),
merchant_deltas AS (
    SELECT d.merchant, d.chunk, d.dn, coalesce(c.df, 0) AS df, coalesce(c.dm, 0) AS dm
    FROM (SELECT merchant, chunk, sum(dn) AS dn FROM delta GROUP BY merchant, chunk) d
    LEFT JOIN newcomers c ON c.merchant = d.merchant AND c.chunk = d.chunk
),
merchant_states AS (
    SELECT merchant, chunk,
           CAST(sum(dn) OVER w AS BIGINT) AS n,
           CAST(sum(df) OVER w AS BIGINT) AS females,
           CAST(sum(dm) OVER w AS BIGINT) AS males
    FROM merchant_deltas
    WINDOW w AS (PARTITION BY merchant ORDER BY chunk
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
)
