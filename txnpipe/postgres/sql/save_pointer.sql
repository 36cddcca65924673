-- The pointer moves only after its chunk is put: a retry rewrites the same chunk.
INSERT INTO txnpipe.chunker_state (source_id, input_key, header, started_at, next_chunk,
                                   next_offset, records, done, input_version_id, input_etag)
VALUES ((SELECT source_id FROM txnpipe.sources WHERE name = %(source)s), %(input_key)s,
        %(header)s, %(started_at)s, %(next_chunk)s, %(next_offset)s, %(records)s, %(done)s,
        %(input_version_id)s, %(input_etag)s)
ON CONFLICT (source_id) DO UPDATE SET next_chunk = EXCLUDED.next_chunk,
    next_offset = EXCLUDED.next_offset, records = EXCLUDED.records, done = EXCLUDED.done,
    updated_at = now()
