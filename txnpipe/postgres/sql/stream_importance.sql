-- The importance file a stream was registered with (none for a stream never registered).
SELECT s.importance_key, s.importance_version_id, s.importance_etag
FROM txnpipe.streams s JOIN txnpipe.sources USING (source_id)
WHERE name = %(source)s AND s.importance_key IS NOT NULL
