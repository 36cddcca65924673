-- The customers PatId1 has emitted already at the batch's merchants (emitted once).
SELECT merchant, customer FROM txnpipe.detections
WHERE source_id = %(sid)s AND pattern = %(pattern)s AND merchant = ANY(%(merchants)s::text[])
