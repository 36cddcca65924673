-- The deployed functions' database roles (SPEC: least privilege). Applied by
-- pgstore.migrate with the master credentials; the functions then connect as these roles,
-- through RDS Proxy, and never run DDL (schema.sql is applied here first).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'txnpipe_chunker') THEN
        CREATE ROLE txnpipe_chunker LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'txnpipe_detector') THEN
        CREATE ROLE txnpipe_detector LOGIN;
    END IF;
END $$;

GRANT USAGE ON SCHEMA txnpipe TO txnpipe_chunker, txnpipe_detector;
GRANT SELECT ON txnpipe.migrations TO txnpipe_chunker, txnpipe_detector;
-- Both register a stream's name on first sight.
GRANT SELECT, INSERT ON txnpipe.sources TO txnpipe_chunker, txnpipe_detector;
GRANT USAGE ON SEQUENCE txnpipe.sources_source_id_seq TO txnpipe_chunker, txnpipe_detector;

-- Mechanism X: the streams it registers from input puts (and the puts it refuses), and
-- the pointer; nothing else.
GRANT SELECT, INSERT, UPDATE ON txnpipe.chunker_state, txnpipe.streams TO txnpipe_chunker;
GRANT INSERT ON txnpipe.stream_refusals TO txnpipe_chunker;
GRANT USAGE ON SEQUENCE txnpipe.stream_refusals_refusal_id_seq TO txnpipe_chunker;

-- Mechanism Y: its progress, history, aggregates and outbox; never the pointer.
GRANT SELECT, INSERT, UPDATE, DELETE ON
    txnpipe.detector_state, txnpipe.arrivals, txnpipe.chunk_log, txnpipe.weights,
    txnpipe.history, txnpipe.customers, txnpipe.pairs, txnpipe.merchants, txnpipe.detections
TO txnpipe_detector;
GRANT EXECUTE ON FUNCTION txnpipe.weight_key(text, text, text) TO txnpipe_detector;
-- The importance file each stream was registered with; a purge marks its stream purged.
GRANT SELECT, UPDATE (status, changed_at) ON txnpipe.streams TO txnpipe_detector;
