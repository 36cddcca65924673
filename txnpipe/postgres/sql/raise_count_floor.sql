-- A raised count floor: the pairs now under it leave pairs_by_top_key.
UPDATE txnpipe.pairs SET top_n = NULL
WHERE source_id = %(sid)s AND merchant = %(merchant)s AND top_n < %(floor)s
