-- The detector's progress row of a source, locked for the purge (no apply runs meanwhile).
SELECT 1 FROM txnpipe.detector_state WHERE source_id = %(sid)s FOR UPDATE
