-- Every row of one source but the source itself (and the hold of the run that resets it).
WITH streams AS (DELETE FROM txnpipe.streams WHERE source_id = %(sid)s),
     chunker AS (DELETE FROM txnpipe.chunker_state WHERE source_id = %(sid)s),
     detector AS (DELETE FROM txnpipe.detector_state WHERE source_id = %(sid)s),
     arrivals AS (DELETE FROM txnpipe.arrivals WHERE source_id = %(sid)s),
     chunk_log AS (DELETE FROM txnpipe.chunk_log WHERE source_id = %(sid)s),
     weights AS (DELETE FROM txnpipe.weights WHERE source_id = %(sid)s),
     history AS (DELETE FROM txnpipe.history WHERE source_id = %(sid)s),
     customers AS (DELETE FROM txnpipe.customers WHERE source_id = %(sid)s),
     pairs AS (DELETE FROM txnpipe.pairs WHERE source_id = %(sid)s),
     merchants AS (DELETE FROM txnpipe.merchants WHERE source_id = %(sid)s)
DELETE FROM txnpipe.detections WHERE source_id = %(sid)s
