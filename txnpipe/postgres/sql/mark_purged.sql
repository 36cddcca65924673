UPDATE txnpipe.streams SET status = 'purged', changed_at = now() WHERE source_id = %(sid)s
RETURNING 1
