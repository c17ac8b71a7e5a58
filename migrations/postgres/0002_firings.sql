-- One row per (job, slot) that fired or was deliberately passed over. The primary key is the
-- claim that makes a slot fire once across every replica: the replica whose insert wins runs
-- it, the others find the row and do nothing. The latest slot per job is what start-up compares
-- with the clock to find slots missed while no replica was up.
CREATE TABLE firings (
    job_id   TEXT NOT NULL,
    slot     TIMESTAMPTZ NOT NULL,
    -- `schedule`, `catch-up`, or `missed` (passed over because catchUp is false)
    trigger  TEXT NOT NULL,
    fired_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (job_id, slot)
);
