-- A source from before streams were registered, purged: a registry row says so.
INSERT INTO txnpipe.streams (source_id, status) VALUES (%(sid)s, 'purged')
