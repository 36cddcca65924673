-- Under the source's lock: one detector loads a stream's weights, once.
SELECT weights_loaded FROM txnpipe.detector_state WHERE source_id = %(sid)s FOR UPDATE
