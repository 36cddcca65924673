SELECT s.name, d.pattern, count(*)
FROM txnpipe.detections d JOIN txnpipe.sources s ON s.source_id = d.source_id
WHERE %(source)s::text IS NULL OR s.name = %(source)s::text
GROUP BY s.name, d.pattern
