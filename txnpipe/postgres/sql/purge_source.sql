-- An ended stream's working state goes: its history, aggregates, customers, weights and
-- arrivals. What it did stays: the pointer, the detector's progress, the chunk log and the
-- detection outbox. The rows removed from each table, in this order.
WITH history AS (DELETE FROM txnpipe.history WHERE source_id = %(sid)s RETURNING 1),
     pairs AS (DELETE FROM txnpipe.pairs WHERE source_id = %(sid)s RETURNING 1),
     merchants AS (DELETE FROM txnpipe.merchants WHERE source_id = %(sid)s RETURNING 1),
     customers AS (DELETE FROM txnpipe.customers WHERE source_id = %(sid)s RETURNING 1),
     weights AS (DELETE FROM txnpipe.weights WHERE source_id = %(sid)s RETURNING 1),
     arrivals AS (DELETE FROM txnpipe.arrivals WHERE source_id = %(sid)s RETURNING 1)
SELECT (SELECT count(*) FROM history), (SELECT count(*) FROM pairs),
       (SELECT count(*) FROM merchants), (SELECT count(*) FROM customers),
       (SELECT count(*) FROM weights), (SELECT count(*) FROM arrivals)
