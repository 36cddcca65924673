-- The transactions the rules read ("tx", frames.SCHEMA), from the records with their
-- weights' keys ("keyed", frames.KEYED_SCHEMA) and the weights as a table ("weights",
-- frames.weights_table): each record gets its key's weight, or NULL when the importance
-- file has no such key (SPEC 2.2). The weights are unique per key, so no record repeats.
CREATE TEMP TABLE tx AS
SELECT k.chunk, k.record, k.customer, k.merchant, k.value, k.gender, w.weight
FROM keyed k
LEFT JOIN weights w
  ON w.customer = k.customer AND w.weight_merchant = k.weight_merchant AND w.kind = k.kind
