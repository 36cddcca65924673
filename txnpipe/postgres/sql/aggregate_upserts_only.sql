-- Ends aggregate.sql when the rules were evaluated before its upserts (a batch, catch_up.py).
SELECT count(*) FROM merchant_rows
