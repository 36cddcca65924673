-- The last migration the database holds; NULL while it holds none.
SELECT max(number) FROM txnpipe.migrations
