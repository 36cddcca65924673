-- A threshold rule over a merchant's aggregates, at its first point.
SELECT min(chunk) AS chunk, __PATTERN__ AS pattern, merchant, '' AS customer
FROM merchant_states
WHERE __CONDITION__
GROUP BY merchant
