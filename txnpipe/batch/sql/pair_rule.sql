-- A threshold rule over a pair's aggregates, at its first point: a pair's state only
-- changes at the chunks that touch it.
SELECT min(chunk) AS chunk, __PATTERN__ AS pattern, merchant, customer FROM state
WHERE __CONDITION__
GROUP BY merchant, customer
