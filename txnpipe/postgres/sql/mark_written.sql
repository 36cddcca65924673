UPDATE txnpipe.detector_state SET files_written = %(files)s WHERE source_id = %(sid)s
