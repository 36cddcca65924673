-- A chunk's records on their way into the history: each is stored with its weight, looked
-- up once here and never again.
CREATE TEMP TABLE IF NOT EXISTS staged (record bigint, customer text COLLATE "C",
    merchant text COLLATE "C", value float8, gender text COLLATE "C", kind text COLLATE "C")
ON COMMIT DELETE ROWS
