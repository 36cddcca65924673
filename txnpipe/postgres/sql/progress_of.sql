-- Where a source stands, read without its lock (a sweep's look before it acts).
SELECT d.next_chunk, d.total_chunks, d.detections, d.files_written, d.upgrade_through
FROM txnpipe.detector_state d JOIN txnpipe.sources s USING (source_id)
WHERE s.name = %(source)s
