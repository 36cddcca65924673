SELECT c.input_key, c.header, c.started_at, c.next_chunk, c.next_offset, c.records, c.done,
       c.input_version_id, c.input_etag
FROM txnpipe.chunker_state c JOIN txnpipe.sources s USING (source_id)
WHERE s.name = %(source)s
