-- Each source's detection count before an invocation: what it records is numbered from there.
SELECT s.name, d.detections FROM txnpipe.sources s
JOIN txnpipe.detector_state d USING (source_id) WHERE s.name = ANY(%(sources)s::text[])
