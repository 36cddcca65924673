-- A batch's detections, its chunks' log rows and the detector's progress, in one statement
-- (record_detections.sql, for several chunks). The candidates are first points in the batch;
-- those detected before it are left out. Detections are numbered in (chunk, pattern,
-- merchant, customer) order, the order the per-chunk apply numbers them in.
WITH candidates AS (
    SELECT * FROM unnest(%(chunk)s::int[], %(pattern)s::smallint[], %(merchant)s::text[],
                         %(customer)s::text[]) AS c(chunk, pattern, merchant, customer)
), inserted AS (
    INSERT INTO txnpipe.detections
        (source_id, seq, chunk, pattern, merchant, customer, y_start, detected_at)
    SELECT %(sid)s,
           %(base)s + row_number() OVER (ORDER BY chunk, pattern, merchant, customer) - 1,
           chunk, pattern, merchant, customer, %(y_start)s, clock_timestamp()
    FROM candidates c
    WHERE NOT EXISTS (SELECT 1 FROM txnpipe.detections d WHERE d.source_id = %(sid)s
                      AND d.pattern = c.pattern AND d.merchant = c.merchant
                      AND d.customer = c.customer)
    RETURNING chunk
), found AS (
    SELECT chunk, count(*) AS found FROM inserted GROUP BY chunk
), done AS (
    DELETE FROM txnpipe.arrivals
    WHERE source_id = %(sid)s AND chunk >= %(first)s AND chunk <= %(last)s
    RETURNING chunk, arrived_at
), logged AS (
    INSERT INTO txnpipe.chunk_log (source_id, chunk, arrived_at, y_start, applied_at, records,
                                   rejects, detections, applied_with)
    SELECT %(sid)s, l.chunk, (SELECT min(d.arrived_at) FROM done d WHERE d.chunk = l.chunk),
           %(y_start)s, clock_timestamp(), l.records, l.rejects, coalesce(f.found, 0),
           %(applied_with)s
    FROM unnest(%(chunks)s::int[], %(records)s::int[], %(rejects)s::int[])
         AS l(chunk, records, rejects)
    LEFT JOIN found f USING (chunk)
)
UPDATE txnpipe.detector_state
SET next_chunk = %(last)s + 1, detections = detections + (SELECT count(*) FROM inserted),
    upgrade_through = %(last)s
WHERE source_id = %(sid)s
RETURNING (SELECT count(*) FROM inserted)
