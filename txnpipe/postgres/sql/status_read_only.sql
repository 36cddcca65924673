-- A status read never runs long on a busy database.
SELECT set_config('statement_timeout', %(timeout)s, true), now()
