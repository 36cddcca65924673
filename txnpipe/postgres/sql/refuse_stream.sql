INSERT INTO txnpipe.stream_refusals (source, input_key, input_version_id, input_etag, reason)
VALUES (%(source)s, %(input_key)s, %(input_version_id)s, %(input_etag)s, %(reason)s)
