-- A new count floor: top_n copies n for exactly the pairs at or above it.
UPDATE txnpipe.pairs SET top_n = CASE WHEN n >= %(floor)s THEN n END
WHERE source_id = %(sid)s AND merchant = %(merchant)s
  AND top_n IS DISTINCT FROM CASE WHEN n >= %(floor)s THEN n END
