-- Leases and takeovers (PostgreSQL runs several replicas on one database; SQLite keeps the same
-- columns so both backends behave alike).

-- Until when the process in `owner` holds the run. The owner renews it while the run is going;
-- once it has passed, any process may mark the run interrupted and queue the rest of its work.
ALTER TABLE runs ADD COLUMN lease_until TEXT;
-- The interrupted run this one continues: entries recorded by it (and by the run it continued,
-- and so on) are done and are not fetched or written again.
ALTER TABLE runs ADD COLUMN resumes INTEGER;
-- 1 for a first run, one more for each continuation, so a run that kills every process that
-- takes it is not handed on for ever.
ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
CREATE INDEX runs_by_job_status ON runs (job_id, status);
