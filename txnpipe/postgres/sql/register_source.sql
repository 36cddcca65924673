INSERT INTO txnpipe.sources (name) VALUES (%(name)s) ON CONFLICT (name) DO NOTHING
