-- Customers are recorded with the history, so that applying a chunk only reads them. A
-- customer's gender is that of their first accepted record: chunks are written in order,
-- and should one ever come late, its earlier record still wins. Customers known from an
-- earlier record are left out before the upsert, which would lock each of them; a
-- customer's first record in the chunk is found first, so each is probed once, not once
-- per record (its later records cannot be new where its first is not).
INSERT INTO txnpipe.customers AS c (source_id, customer, gender, first_record)
SELECT %(sid)s, customer, gender, record
FROM (SELECT DISTINCT ON (customer) customer, gender, record FROM txnpipe.history
      WHERE source_id = %(sid)s AND record >= %(lo)s AND record < %(hi)s
      ORDER BY customer, record) h
WHERE NOT EXISTS (SELECT FROM txnpipe.customers k WHERE k.source_id = %(sid)s
                  AND k.customer = h.customer AND k.first_record <= h.record)
ON CONFLICT (source_id, customer) DO UPDATE
SET gender = EXCLUDED.gender, first_record = EXCLUDED.first_record
WHERE EXCLUDED.first_record < c.first_record
