-- A threshold rule over a merchant's aggregates: its first point in the batch.
SELECT min(chunk) AS chunk, __PATTERN__ AS pattern, merchant, '' AS customer
FROM merchant_states
WHERE __CONDITION__
GROUP BY merchant
