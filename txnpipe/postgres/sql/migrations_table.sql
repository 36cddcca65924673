-- The migrations a database holds, one row each (migrations/NNN_name.sql).
CREATE SCHEMA IF NOT EXISTS txnpipe;
CREATE TABLE IF NOT EXISTS txnpipe.migrations (
    number      int PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
