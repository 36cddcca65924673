SELECT source_id FROM txnpipe.sources WHERE name = %(name)s
