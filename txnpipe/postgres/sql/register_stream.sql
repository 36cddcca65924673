-- A new stream; nothing when the name is a stream already (a concurrent put's event).
INSERT INTO txnpipe.streams (source_id, input_key, input_version_id, input_etag,
                             importance_key, importance_version_id, importance_etag,
                             status, error, restarts)
VALUES (%(sid)s, %(input_key)s, %(input_version_id)s, %(input_etag)s, %(importance_key)s,
        %(importance_version_id)s, %(importance_etag)s, %(status)s, %(error)s, %(restarts)s)
ON CONFLICT (source_id) DO NOTHING
RETURNING 1
