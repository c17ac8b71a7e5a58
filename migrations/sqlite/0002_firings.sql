-- One row per (job, slot) that fired or was deliberately passed over. The primary key is the
-- claim that makes a slot fire once; the latest slot per job is what start-up compares with
-- the clock to find slots missed while curator was down.
CREATE TABLE firings (
    job_id   TEXT NOT NULL,
    slot     TEXT NOT NULL,
    -- `schedule`, `catch-up`, or `missed` (passed over because catchUp is false)
    trigger  TEXT NOT NULL,
    fired_at TEXT NOT NULL,
    PRIMARY KEY (job_id, slot)
);
