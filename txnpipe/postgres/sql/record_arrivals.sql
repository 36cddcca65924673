-- Chunks whose events came in. Rows are inserted in chunk order, whatever the event's
-- order: concurrent detectors lock the same rows in one global order and never deadlock.
INSERT INTO txnpipe.arrivals (source_id, chunk)
SELECT %(sid)s, c.chunk FROM txnpipe.detector_state d, unnest(%(chunks)s::int[]) AS c(chunk)
WHERE d.source_id = %(sid)s AND d.next_chunk <= c.chunk
ORDER BY c.chunk
ON CONFLICT (source_id, chunk) DO NOTHING
