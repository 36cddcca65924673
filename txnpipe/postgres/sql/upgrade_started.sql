-- The batch run now in flight for a source's pending PatId1 points.
UPDATE txnpipe.detector_state
SET upgrade_run = %(run)s, upgrade_first = %(first)s, upgrade_last = %(last)s
WHERE source_id = %(sid)s
