-- Serialises migrations, so that concurrent cold starts never race on DDL. A session lock,
-- taken before the migration's transaction begins: a transaction that begins after another
-- session's DDL committed sees it in every catalog look-up (a lock taken inside a
-- transaction would leave that transaction's cached catalog view from before the commit).
SELECT pg_advisory_lock(7301001)
