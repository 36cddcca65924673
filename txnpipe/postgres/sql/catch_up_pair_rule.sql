-- A threshold rule over a pair's aggregates: its first point in the batch.
SELECT min(chunk) AS chunk, __PATTERN__ AS pattern, merchant, customer FROM state
WHERE __CONDITION__
GROUP BY merchant, customer
