-- Chunks that landed and wait for a predecessor, and the age of the oldest.
SELECT count(*), coalesce(EXTRACT(EPOCH FROM now() - min(arrived_at))::float8, 0)
FROM txnpipe.arrivals
WHERE source_id = (SELECT source_id FROM txnpipe.sources WHERE name = %(source)s)
