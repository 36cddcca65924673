SELECT to_regclass('txnpipe.migrations') IS NOT NULL
