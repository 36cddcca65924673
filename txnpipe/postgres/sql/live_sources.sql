-- Sources whose stream has not ended, or still has detection files to write (for a sweep).
SELECT s.name FROM txnpipe.detector_state d JOIN txnpipe.sources s USING (source_id)
WHERE d.total_chunks IS NULL OR d.next_chunk < d.total_chunks
   OR d.upgrade_through < d.total_chunks - 1 OR d.upgrade_run IS NOT NULL
   OR d.files_written * %(batch_rows)s < d.detections
ORDER BY s.name
