-- A stream's per-chunk log, for run.json and txnpipe report.
SELECT chunk, arrived_at, y_start, applied_at, records, rejects, detections
FROM txnpipe.chunk_log WHERE source_id = %(sid)s ORDER BY chunk
