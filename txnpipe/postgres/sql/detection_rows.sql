-- One detection file's rows: a slice of the outbox's sequence.
SELECT chunk, pattern, merchant, customer, y_start, detected_at
FROM txnpipe.detections WHERE source_id = %(sid)s AND seq >= %(start)s AND seq < %(stop)s
ORDER BY seq
