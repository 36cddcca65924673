-- Whether the database has the stream registry (migration 006; status never migrates).
SELECT to_regclass('txnpipe.streams') IS NOT NULL
