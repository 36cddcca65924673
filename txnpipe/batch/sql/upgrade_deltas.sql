-- PatId1's input, for the merchant walk (core.rules.percentile_walk): each merchant's
-- per-chunk pair deltas in chunk order, for the merchants past the minimum by $last only
-- (a merchant never past it has no PatId1 point). One pass; no pair state per point.
SELECT merchant, chunk, customer, dn, dwc, dws
FROM delta
WHERE merchant IN (SELECT merchant FROM delta GROUP BY merchant
                   HAVING sum(dn) > $min_merchant_txns)
ORDER BY merchant, chunk
