-- The manifest: how many chunks and records the stream has.
UPDATE txnpipe.detector_state SET total_chunks = %(chunks)s, total_records = %(records)s
WHERE source_id = %(sid)s
