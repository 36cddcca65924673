-- 005: names that say what they count. "weighted" counted transactions on a pair and
-- customers on a merchant.
ALTER TABLE txnpipe.pairs RENAME COLUMN weighted TO weighted_txns;
ALTER TABLE txnpipe.merchants RENAME COLUMN weighted TO weighted_customers;
