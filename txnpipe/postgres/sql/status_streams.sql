-- Each registered stream: what it reads (the input and the importance file, with the
-- versions it is pinned to), its status and why it failed.
SELECT name, s.status, s.error, s.input_key, coalesce(s.input_version_id, s.input_etag),
       s.importance_key, coalesce(s.importance_version_id, s.importance_etag),
       s.registered_at, s.restarts
FROM txnpipe.streams s JOIN txnpipe.sources USING (source_id)
WHERE %(source)s::text IS NULL OR name = %(source)s::text
