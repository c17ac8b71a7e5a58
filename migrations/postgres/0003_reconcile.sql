-- Reconcile in depth: Git provenance on each job, an index of the job files a pass has
-- already read, a record of job rows changed behind curator's back, and runs marked when their
-- job is deleted. (0002 is the scheduler's.)

-- The commit that last changed the job's file, and whether the work tree holds uncommitted
-- changes to it. Both NULL when jobs.d/ is not in a Git work tree.
ALTER TABLE jobs ADD COLUMN source_commit TEXT;
ALTER TABLE jobs ADD COLUMN source_dirty BOOLEAN;
CREATE INDEX jobs_by_source_file ON jobs (source_file);

-- Each valid job file as the reconciler last read it. A file whose stamp still matches is not
-- read again; a file with errors has no row, so it is read and reported on every pass.
CREATE TABLE job_files (
    -- the path under jobs.d/, `/`-separated, as in jobs.source_file
    path       TEXT PRIMARY KEY,
    -- a hash of the file's size, modification and change times and inode, taken before it
    -- was read
    stamp      BIGINT NOT NULL,
    -- true when the file had been modified well before it was read; false when a second write
    -- in the same tick of the file system's clock could have left the stamp as it was, so the
    -- file is read again at the next pass
    stable     BOOLEAN NOT NULL,
    git_commit TEXT,
    git_dirty  BOOLEAN
);

-- Every job row written since the last applied pass, by anyone. The reconciler clears the
-- list when it commits a pass, so what is listed at the start of the next pass was written
-- outside curator: drift to compare with the files, found without reading every row.
CREATE TABLE jobs_touched (
    id          TEXT NOT NULL,
    source_file TEXT NOT NULL,
    PRIMARY KEY (id, source_file)
);

CREATE FUNCTION jobs_touched_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO jobs_touched (id, source_file) VALUES (OLD.id, OLD.source_file)
        ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO jobs_touched (id, source_file) VALUES (NEW.id, NEW.source_file)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_touched_on_write AFTER INSERT OR UPDATE OR DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_touched_record();

-- When the job a run belongs to was deleted; NULL while it exists. A job recreated under the
-- same ID starts a new history: its old runs stay marked.
ALTER TABLE runs ADD COLUMN job_deleted_at TIMESTAMPTZ;

-- What the index above was computed against: a key over curator's version, the directory,
-- the libraries and the providers (a different key means every file is checked again), and
-- the Git HEAD the stored commits were read at. Both change only when a pass is applied.
ALTER TABLE reconcile_state ADD COLUMN cache_key TEXT;
ALTER TABLE reconcile_state ADD COLUMN provenance_head TEXT;
