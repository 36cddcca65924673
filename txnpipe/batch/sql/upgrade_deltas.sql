-- PatId1's input, for the merchant walk (core.rules.percentile_walk): the per-chunk pair
-- deltas of the merchants past the minimum by $last only (a merchant never past it has no
-- PatId1 point), kept as a table that each merchant's walk reads in chunk order
-- (upgrade_merchant_deltas.sql). The placeholder after WITH is replaced by states.sql.
CREATE TEMP TABLE upgrade_deltas AS
WITH __STATES__
SELECT merchant, chunk, customer, dn, dwc, dws
FROM delta
WHERE merchant IN (SELECT merchant FROM delta GROUP BY merchant
                   HAVING sum(dn) > $min_merchant_txns)
