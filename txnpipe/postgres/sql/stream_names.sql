SELECT name FROM txnpipe.streams JOIN txnpipe.sources USING (source_id)
