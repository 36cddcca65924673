DELETE FROM txnpipe.run_leases WHERE source_id = %(sid)s AND holder = %(holder)s
