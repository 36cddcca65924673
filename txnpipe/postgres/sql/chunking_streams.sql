-- Live streams whose chunker has not written its manifest, by source; all of them, or
-- those named.
SELECT name, s.input_key, s.input_version_id, s.input_etag, s.importance_key,
       s.importance_version_id, s.importance_etag, s.status, s.error, s.registered_at,
       s.restarts
FROM txnpipe.streams s JOIN txnpipe.sources USING (source_id)
     LEFT JOIN txnpipe.chunker_state c USING (source_id)
WHERE s.status = 'live' AND NOT coalesce(c.done, false)
  AND (%(sources)s::text[] IS NULL OR name = ANY(%(sources)s::text[]))
ORDER BY name
