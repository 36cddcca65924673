-- Each key's weight is the mean of its rows (SPEC 2.2).
INSERT INTO txnpipe.weights (source_id, customer, merchant, kind, weight)
SELECT %(sid)s, customer, merchant, kind, avg(weight) FROM weights_in
GROUP BY customer, merchant, kind
