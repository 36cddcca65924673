-- The staged records into the history, each with its weight (seed weights: keyed by (customer, kind), stored with merchant '').
-- The scalar subquery keeps the look-up an index probe per record (weights_by_key, the
-- key's hash) whatever the planner guesses of the temporary table.
INSERT INTO txnpipe.history
    (source_id, record, chunk, customer, merchant, value, gender, kind, weight)
SELECT %(sid)s, i.record, %(chunk)s, i.customer, i.merchant, i.value, i.gender, i.kind,
       (SELECT w.weight FROM txnpipe.weights w
        WHERE w.source_id = %(sid)s
          AND txnpipe.weight_key(w.customer, w.merchant, w.kind)
              = txnpipe.weight_key(i.customer, '', i.kind)
          AND w.customer = i.customer AND w.kind = i.kind AND w.merchant = '')
FROM staged i
ON CONFLICT (source_id, record) DO NOTHING  -- another detector staged the chunk meanwhile
