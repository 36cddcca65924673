SELECT pg_advisory_unlock(7301002, %(sid)s)
