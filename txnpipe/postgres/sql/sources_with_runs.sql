-- Sources whose PatId1 batch run is in flight (a Glue completion names no source).
SELECT s.name FROM txnpipe.detector_state d JOIN txnpipe.sources s USING (source_id)
WHERE d.upgrade_run IS NOT NULL ORDER BY s.name
