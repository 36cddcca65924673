INSERT INTO txnpipe.detector_state (source_id) VALUES (%(sid)s) ON CONFLICT (source_id) DO NOTHING
