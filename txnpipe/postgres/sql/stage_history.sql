-- A chunk's staged records into the history, each with its weight, and its new customers:
-- one statement, so the chunk is read once (from the staging table, not back from the
-- history) and written without a round trip per step.
--
-- A chunk already in the history (staged ahead, or written by a detector that then
-- crashed) is left as it is: one transaction writes all of it, so its first record stands
-- for all. There is no ON CONFLICT: its speculative insertion cost a quarter of the
-- statement. A detector writing the same chunk at the same moment makes this one fail
-- with a unique violation once it commits, and ingest.py takes that as written.
--
-- The weight is looked up by a scalar subquery, so that it stays an index probe per record
-- (weights_by_key, the key's hash) whatever the planner guesses of the temporary table.
-- BankSim weights are keyed by (customer, merchant, kind); seed weights by (customer,
-- kind), stored with merchant ''.
--
-- A customer's gender is that of their first accepted record: chunks are written in order,
-- and should one ever come late, its earlier record still wins. Customers known from an
-- earlier record are left out before the upsert, which would lock each of them; a
-- customer's first record in the chunk is found first, so each is probed once, not once
-- per record (its later records cannot be new where its first is not). The probe is a
-- scalar subquery for the same reason as the weight's: as NOT EXISTS, the planner was free
-- to make it an anti join that sorted or hashed every customer of the source on every
-- chunk (a third of the statement at 16,000 customers, and growing with the stream).
WITH written AS (
    INSERT INTO txnpipe.history
        (source_id, record, chunk, customer, merchant, value, gender, kind, weight)
    SELECT %(sid)s, i.record, %(chunk)s, i.customer, i.merchant, i.value, i.gender, i.kind,
           (SELECT w.weight FROM txnpipe.weights w
            WHERE w.source_id = %(sid)s
              AND txnpipe.weight_key(w.customer, w.merchant, w.kind)
                  = txnpipe.weight_key(i.customer, k.merchant, i.kind)
              AND w.customer = i.customer AND w.kind = i.kind AND w.merchant = k.merchant)
    FROM staged i
    CROSS JOIN LATERAL (SELECT CASE WHEN %(by_merchant)s THEN i.merchant ELSE '' END
                        AS merchant) k
    WHERE NOT EXISTS (SELECT FROM txnpipe.history h
                      WHERE h.source_id = %(sid)s AND h.record = %(first)s)
    RETURNING customer, gender, record
)
INSERT INTO txnpipe.customers AS c (source_id, customer, gender, first_record)
SELECT %(sid)s, customer, gender, record
FROM (SELECT DISTINCT ON (customer) customer, gender, record FROM written
      ORDER BY customer, record) h
WHERE (SELECT k.first_record <= h.record FROM txnpipe.customers k
       WHERE k.source_id = %(sid)s AND k.customer = h.customer) IS NOT TRUE
ON CONFLICT (source_id, customer) DO UPDATE
SET gender = EXCLUDED.gender, first_record = EXCLUDED.first_record
WHERE EXCLUDED.first_record < c.first_record
