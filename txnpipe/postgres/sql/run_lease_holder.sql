SELECT holder FROM txnpipe.run_leases WHERE source_id = %(sid)s
