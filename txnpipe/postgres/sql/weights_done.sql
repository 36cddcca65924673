UPDATE txnpipe.detector_state
SET weights_loaded = true, weights_layout = %(layout)s, weights_rows = %(rows)s,
    weights_skipped = %(skipped)s
WHERE source_id = %(sid)s
