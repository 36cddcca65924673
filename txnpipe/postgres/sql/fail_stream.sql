UPDATE txnpipe.streams SET status = 'failed', error = %(reason)s, changed_at = now()
WHERE source_id = %(sid)s AND status = 'live'
