-- PatId1 from a batch run: each key at its first point in the run, unless already emitted,
-- numbered after what is recorded so far; YStartTime is that of the point's chunk. A run's
-- candidates come in slices of (chunk, merchant, customer) order (outbox.py), so the order
-- is byte order, as Python sorts them, whatever the database's collation.
WITH candidates AS (
    SELECT merchant, customer, min(chunk) AS chunk
    FROM unnest(%(chunk)s::int[], %(merchant)s::text[], %(customer)s::text[])
        AS c(chunk, merchant, customer)
    GROUP BY merchant, customer
), inserted AS (
    INSERT INTO txnpipe.detections
        (source_id, seq, chunk, pattern, merchant, customer, y_start, detected_at)
    SELECT %(sid)s,
           %(base)s + row_number() OVER (ORDER BY c.chunk, c.merchant COLLATE "C",
                                          c.customer COLLATE "C") - 1,
           c.chunk, %(pattern)s, c.merchant, c.customer, l.y_start, clock_timestamp()
    FROM candidates c
    JOIN txnpipe.chunk_log l ON l.source_id = %(sid)s AND l.chunk = c.chunk
    WHERE NOT EXISTS (SELECT 1 FROM txnpipe.detections d WHERE d.source_id = %(sid)s
                      AND d.pattern = %(pattern)s AND d.merchant = c.merchant
                      AND d.customer = c.customer)
    RETURNING 1
), counted AS (
    SELECT count(*) AS n FROM inserted
)
UPDATE txnpipe.detector_state
SET detections = detections + (SELECT n FROM counted), upgrade_through = %(last)s,
    upgrade_run = NULL, upgrade_first = NULL, upgrade_last = NULL
WHERE source_id = %(sid)s
RETURNING (SELECT n FROM counted)
