-- 006: streams as data. A stream is registered from its input object's S3 event, pinned to
-- that object's version and to the importance file present then; a failed stream keeps its
-- reason. A put of a name that is already a stream changes nothing: it is recorded here.
CREATE TABLE IF NOT EXISTS txnpipe.streams (
    source_id                  int PRIMARY KEY REFERENCES txnpipe.sources,
    -- NULL only for a source from before streams were registered, purged since
    input_key                  text,
    input_version_id           text,           -- NULL where the bucket keeps no versions
    input_etag                 text,
    importance_key             text,           -- NULL: none was present (the stream failed)
    importance_version_id      text,
    importance_etag            text,
    status                     text NOT NULL DEFAULT 'live'
                               CHECK (status IN ('live', 'failed', 'purged')),
    error                      text,           -- why the stream failed
    registered_at              timestamptz NOT NULL DEFAULT now(),
    changed_at                 timestamptz NOT NULL DEFAULT now(),
    restarts                   int NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS txnpipe.stream_refusals (
    refusal_id                 bigserial PRIMARY KEY,
    source                     text COLLATE "C" NOT NULL,
    input_key                  text NOT NULL,
    input_version_id           text,
    input_etag                 text,
    reason                     text NOT NULL,
    refused_at                 timestamptz NOT NULL DEFAULT now()
);
