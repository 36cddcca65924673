-- The merchants to walk and their delta counts, largest first (so that walks run in
-- parallel finish together).
SELECT merchant, count(*) AS n FROM upgrade_deltas GROUP BY merchant ORDER BY n DESC, merchant
