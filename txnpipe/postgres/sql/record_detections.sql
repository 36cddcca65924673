-- A chunk's detections, its log row and the detector's progress, in one statement.
-- PatId1 emits a key once, at the first point where it holds, so an evaluation only reads
-- the pairs that may hold now and did not at the merchant's last evaluation: those the
-- chunk touched (passed in with the threshold rules' candidates), those whose count lies
-- between the new count threshold and a higher last one, those whose mean weight lies
-- between the last weight threshold and a higher new one. Every pair at the thresholds is
-- read only when the last ones are unknown. Each range is an index range scan.
WITH thresholds AS (
    SELECT * FROM unnest(%(upgrade_merchants)s::text[], %(min_n)s::int[], %(tw)s::float8[],
                         %(last_min_n)s::int[], %(last_tw)s::float8[], %(floor)s::int[],
                         %(cursor_w)s::float8[], %(cursor_customer)s::text[],
                         %(cursor_below)s::int[], %(count_cursor_n)s::int[],
                         %(count_cursor_customer)s::text[], %(count_cursor_above)s::int[])
        AS t(merchant, min_n, tw, last_min_n, last_tw, floor, cursor_w, cursor_customer,
             cursor_below, count_cursor_n, count_cursor_customer, count_cursor_above)
), kept AS (
    UPDATE txnpipe.merchants m
    SET cursor_w = t.cursor_w, cursor_customer = t.cursor_customer,
        cursor_below = t.cursor_below, count_cursor_n = t.count_cursor_n,
        count_cursor_customer = t.count_cursor_customer,
        count_cursor_above = t.count_cursor_above, count_floor = t.floor,
        last_min_n = t.min_n, last_tw = t.tw
    FROM thresholds t
    WHERE m.source_id = %(sid)s AND m.merchant = t.merchant
), candidates AS (
    SELECT %(percentile_pattern)s::smallint AS pattern, t.merchant, p.customer
    FROM thresholds t,
         LATERAL (SELECT customer, w FROM txnpipe.pairs
                  WHERE source_id = %(sid)s AND merchant = t.merchant AND top_n >= t.min_n
                    AND top_n < coalesce(t.last_min_n, 2147483647)
                  OFFSET 0) p  -- a range of pairs_by_top_key, whatever the planner guesses
    WHERE p.w <= t.tw + %(eps)s
  UNION
    SELECT %(percentile_pattern)s::smallint, t.merchant, p.customer
    FROM thresholds t,
         LATERAL (SELECT customer, top_n FROM txnpipe.pairs
                  WHERE source_id = %(sid)s AND merchant = t.merchant
                    AND w > t.last_tw + %(eps)s AND w <= t.tw + %(eps)s
                  OFFSET 0) p  -- a range of pairs_by_mean_weight
    WHERE p.top_n >= t.min_n
  UNION
    SELECT * FROM unnest(%(pattern)s::smallint[], %(merchant)s::text[], %(customer)s::text[])
), inserted AS (
    INSERT INTO txnpipe.detections
        (source_id, seq, chunk, pattern, merchant, customer, y_start, detected_at)
    SELECT %(sid)s,
           %(base)s + row_number() OVER (ORDER BY pattern, merchant, customer) - 1,
           %(chunk)s, pattern, merchant, customer, %(y_start)s, clock_timestamp()
    FROM candidates c
    -- a probe per candidate, as a scalar subquery: as NOT EXISTS the planner was free to
    -- make it an anti join that read every detection of the source on every chunk
    WHERE (SELECT d.seq FROM txnpipe.detections d WHERE d.source_id = %(sid)s
           AND d.pattern = c.pattern AND d.merchant = c.merchant
           AND d.customer = c.customer) IS NULL
    RETURNING 1
), counted AS (
    SELECT count(*) AS found FROM inserted
), done AS (
    DELETE FROM txnpipe.arrivals WHERE source_id = %(sid)s AND chunk = %(chunk)s
    RETURNING arrived_at
), logged AS (
    INSERT INTO txnpipe.chunk_log
        (source_id, chunk, arrived_at, y_start, applied_at, records, rejects, detections)
    SELECT %(sid)s, %(chunk)s, (SELECT min(arrived_at) FROM done), %(y_start)s,
           clock_timestamp(), %(records)s, %(rejects)s, found
    FROM counted
)
UPDATE txnpipe.detector_state
SET next_chunk = %(chunk)s + 1, detections = detections + (SELECT found FROM counted),
    upgrade_through = CASE WHEN %(inline)s THEN %(chunk)s ELSE upgrade_through END
WHERE source_id = %(sid)s
RETURNING (SELECT found FROM counted)
