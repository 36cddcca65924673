INSERT INTO txnpipe.run_leases (source_id, holder) VALUES (%(sid)s, %(holder)s)
ON CONFLICT (source_id) DO UPDATE SET holder = EXCLUDED.holder, since = now()
