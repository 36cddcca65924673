-- PatId1's merchants: how many keys the chunk moved across each cursor, and the touched
-- pairs that may newly hold (at or above the floor). Each merchant's touched pairs are
-- gathered into arrays in one pass: joined row by row, the planner (blind to a CTE's
-- size) would compare every touched pair with every merchant.
SELECT __PATTERN__, r.merchant, NULL, r.customers, r.weighted_customers, r.count_floor,
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
