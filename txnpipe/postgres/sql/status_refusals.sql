-- The latest puts that were refused and changed nothing.
SELECT source, input_key, reason, refused_at
FROM txnpipe.stream_refusals
WHERE %(source)s::text IS NULL OR source = %(source)s::text
ORDER BY refusal_id DESC
LIMIT 20
