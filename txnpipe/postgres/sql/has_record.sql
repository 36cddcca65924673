-- Whether a chunk is in the history already: it is written in one transaction, so its
-- first accepted record stands for all of them.
SELECT EXISTS (SELECT FROM txnpipe.history WHERE source_id = %(sid)s AND record = %(record)s)
