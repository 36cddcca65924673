-- Mechanism X's one writer per source: a session lock, held for a whole tick.
SELECT pg_try_advisory_lock(7301002, %(sid)s)
