SELECT pg_advisory_unlock(7301001)
