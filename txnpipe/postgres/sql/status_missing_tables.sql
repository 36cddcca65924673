-- The txnpipe tables a database lacks (none: it is a database txnpipe runs on).
SELECT t.name FROM unnest(%(tables)s::text[]) AS t(name)
WHERE to_regclass('txnpipe.' || t.name) IS NULL
ORDER BY t.name
