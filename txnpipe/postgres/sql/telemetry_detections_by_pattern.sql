-- Detections an invocation recorded: numbered from first_seq on, and either found when one
-- of its chunks was applied or (batch engine) merged from a run it collected, whose
-- evaluation points are that run's range. Another invocation's fall outside both.
SELECT pattern, count(*) FROM txnpipe.detections
WHERE source_id = (SELECT source_id FROM txnpipe.sources WHERE name = %(source)s)
  AND seq >= %(first_seq)s
  AND (chunk = ANY(%(chunks)s::int[])
       OR (pattern = %(percentile_pattern)s AND EXISTS (
           SELECT 1 FROM unnest(%(run_first)s::int[], %(run_last)s::int[]) AS r(first, last)
           WHERE chunk BETWEEN r.first AND r.last)))
GROUP BY pattern
