-- PatId1's merchants in a batch: those it touches that are past the minimum by its end,
-- with their stored N(m) and the thresholds of their last evaluation (NULL: unknown).
SELECT d.merchant, coalesce(m.n, 0), m.last_min_n, m.last_tw
FROM (SELECT merchant, count(*) AS dn FROM txnpipe.history
      WHERE source_id = %(sid)s AND record >= %(lo)s AND record < %(hi)s
      GROUP BY merchant) d
LEFT JOIN txnpipe.merchants m ON m.source_id = %(sid)s AND m.merchant = d.merchant
WHERE coalesce(m.n, 0) + d.dn > %(min_merchant_txns)s
ORDER BY d.merchant
