-- Leases and takeovers: several replicas share this database, and any of them may die.

-- Until when the process in `owner` holds the run. The owner renews it while the run is going;
-- once it has passed, any replica may mark the run interrupted and queue the rest of its work.
-- Times are the database's clock, so replicas' clocks need not agree.
ALTER TABLE runs ADD COLUMN lease_until TIMESTAMPTZ;
-- The interrupted run this one continues: entries recorded by it (and by the run it continued,
-- and so on) are done and are not fetched or written again.
ALTER TABLE runs ADD COLUMN resumes BIGINT;
-- 1 for a first run, one more for each continuation, so a run that kills every replica that
-- takes it is not handed on for ever.
ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
CREATE INDEX runs_by_job_status ON runs (job_id, status);
-- The queue and the lease sweep read only what is waiting or going.
CREATE INDEX runs_active ON runs (id) WHERE status IN ('queued', 'running');
