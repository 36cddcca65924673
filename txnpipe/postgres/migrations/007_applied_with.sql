-- 007: a backlog of landed chunks is applied several at a time, in one transaction
-- (catch-up); each chunk's log row says how many chunks were applied with it, so that its
-- share of the batch's time is (applied_at - y_start) / applied_with.
ALTER TABLE txnpipe.chunk_log ADD COLUMN IF NOT EXISTS applied_with int NOT NULL DEFAULT 1;
