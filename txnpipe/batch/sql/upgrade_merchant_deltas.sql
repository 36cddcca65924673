-- One merchant's deltas in chunk order: the merchant walk's input.
SELECT chunk, customer, dn, dwc, dws FROM upgrade_deltas WHERE merchant = $merchant ORDER BY chunk
