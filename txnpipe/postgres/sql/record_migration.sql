INSERT INTO txnpipe.migrations (number, name) VALUES (%(number)s, %(name)s)
