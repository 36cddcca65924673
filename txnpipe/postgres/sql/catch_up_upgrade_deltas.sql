-- The merchant walk's input: the batch's per-chunk pair deltas at PatId1's merchants, each
-- merchant's in chunk order.
SELECT merchant, chunk, customer, count(*)::int, count(weight)::int,
       coalesce(sum(weight), 0)::float8
FROM txnpipe.history
WHERE source_id = %(sid)s AND record >= %(lo)s AND record < %(hi)s
  AND merchant = ANY(%(merchants)s::text[])
GROUP BY merchant, chunk, customer
ORDER BY merchant, chunk
