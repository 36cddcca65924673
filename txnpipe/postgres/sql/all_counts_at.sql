-- Counts from the top over all of a merchant's pairs, when the floor is missing or too high.
SELECT n, customer FROM txnpipe.pairs WHERE source_id = %(sid)s AND merchant = %(merchant)s
ORDER BY n DESC, customer DESC OFFSET %(skip)s LIMIT %(take)s
