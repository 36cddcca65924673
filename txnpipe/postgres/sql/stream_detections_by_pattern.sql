SELECT pattern, count(*) FROM txnpipe.detections WHERE source_id = %(sid)s
GROUP BY pattern ORDER BY pattern
