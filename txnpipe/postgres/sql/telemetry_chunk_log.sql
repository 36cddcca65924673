-- The chunks an invocation applied: counts, and landed-to-applied lag.
SELECT chunk, records, rejects, detections,
       EXTRACT(EPOCH FROM applied_at - arrived_at)::float8
FROM txnpipe.chunk_log
WHERE source_id = (SELECT source_id FROM txnpipe.sources WHERE name = %(source)s)
  AND chunk = ANY(%(chunks)s::int[])
ORDER BY chunk
