SELECT weights_loaded FROM txnpipe.detector_state WHERE source_id = %(sid)s
