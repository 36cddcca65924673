-- The detector's view of a source, under its lock (one applier at a time), with the chunks
-- that landed and wait to be applied.
SELECT next_chunk, total_chunks, detections, files_written, upgrade_through,
       weights_layout, upgrade_run, upgrade_first, upgrade_last,
       ARRAY(SELECT a.chunk FROM txnpipe.arrivals a
             WHERE a.source_id = d.source_id AND a.chunk >= d.next_chunk)
FROM txnpipe.detector_state d WHERE source_id = %(sid)s FOR UPDATE
