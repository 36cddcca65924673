-- The importance rows read and skipped when the stream's weights were loaded.
SELECT coalesce(weights_rows, 0), coalesce(weights_skipped, 0)
FROM txnpipe.detector_state WHERE source_id = %(sid)s
