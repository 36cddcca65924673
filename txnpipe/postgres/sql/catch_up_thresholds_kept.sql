-- PatId1's thresholds at each walked merchant's last evaluation in the batch, for the next
-- per-chunk evaluation to read only what may newly hold (record_detections.sql).
UPDATE txnpipe.merchants m SET last_min_n = t.min_n, last_tw = t.tw
FROM unnest(%(merchants)s::text[], %(min_n)s::int[], %(tw)s::float8[]) AS t(merchant, min_n, tw)
WHERE m.source_id = %(sid)s AND m.merchant = t.merchant
