-- One registered stream (SELECT columns in the order streams.py reads them).
SELECT s.input_key, s.input_version_id, s.input_etag, s.importance_key,
       s.importance_version_id, s.importance_etag, s.status, s.error, s.registered_at,
       s.restarts
FROM txnpipe.streams s JOIN txnpipe.sources USING (source_id)
WHERE name = %(source)s
