-- What a database made before migrations were numbered holds: the 0.1 layout has no mean
-- weight column, 0.2 no count cursor (n_before); anything later is 0.3.
SELECT to_regclass('txnpipe.sources') IS NOT NULL,
       EXISTS (SELECT FROM information_schema.columns
               WHERE table_schema = 'txnpipe' AND table_name = 'pairs' AND column_name = 'w'),
       EXISTS (SELECT FROM information_schema.columns
               WHERE table_schema = 'txnpipe' AND table_name = 'pairs' AND column_name = 'n_before')
