-- Where the merchant walk of a batch starts: every stored pair of PatId1's merchants.
SELECT merchant, customer, n, weighted_txns, weight_sum FROM txnpipe.pairs
WHERE source_id = %(sid)s AND merchant = ANY(%(merchants)s::text[])
