-- A local run's hold on a source: a session lock on the run's own connection.
SELECT pg_try_advisory_lock(7301003, %(sid)s)
