-- Every source's state, or one source's. Arrivals rows are deleted when their chunk is
-- applied, so every row still there is a chunk that landed and waits (its predecessors may
-- not have landed yet). Columns that later migrations added are read through to_jsonb, so
-- that a database of an older layout (status never migrates) reads as NULL there.
SELECT s.name,
       c.source_id IS NOT NULL, c.next_chunk, c.records, c.done, c.updated_at,
       d.source_id IS NOT NULL, d.next_chunk, d.total_chunks, d.total_records,
       d.detections, d.files_written,
       (to_jsonb(d) ->> 'upgrade_through')::int, to_jsonb(d) ->> 'upgrade_run',
       (to_jsonb(d) ->> 'weights_rows')::bigint, (to_jsonb(d) ->> 'weights_skipped')::bigint,
       w.waiting, w.oldest_arrival,
       l.chunk, l.arrived_at, l.y_start, l.applied_at,
       t.records, t.rejects
FROM txnpipe.sources s
LEFT JOIN txnpipe.chunker_state c ON c.source_id = s.source_id
LEFT JOIN txnpipe.detector_state d ON d.source_id = s.source_id
LEFT JOIN LATERAL (
    SELECT count(*) AS waiting, min(a.arrived_at) AS oldest_arrival
    FROM txnpipe.arrivals a
    WHERE a.source_id = s.source_id AND a.chunk >= coalesce(d.next_chunk, 0)
) w ON true
LEFT JOIN LATERAL (
    SELECT g.chunk, g.arrived_at, g.y_start, g.applied_at
    FROM txnpipe.chunk_log g WHERE g.source_id = s.source_id
    ORDER BY g.chunk DESC LIMIT 1
) l ON true
LEFT JOIN LATERAL (
    SELECT coalesce(sum(g.records), 0) AS records, coalesce(sum(g.rejects), 0) AS rejects
    FROM txnpipe.chunk_log g WHERE g.source_id = s.source_id
) t ON true
WHERE %(source)s::text IS NULL OR s.name = %(source)s::text
ORDER BY s.name
