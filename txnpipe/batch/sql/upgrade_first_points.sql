-- PatId1 at its first point per key.
SELECT min(chunk) AS chunk, __PATTERN__ AS pattern, merchant, customer FROM upgrade
GROUP BY merchant, customer
