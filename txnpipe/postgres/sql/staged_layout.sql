-- What the prefetch thread needs to stage a chunk: the source and how its weights are keyed.
SELECT d.source_id, d.weights_layout FROM txnpipe.detector_state d
JOIN txnpipe.sources s USING (source_id) WHERE s.name = %(source)s
