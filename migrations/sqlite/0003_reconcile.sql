-- Reconcile in depth: Git provenance on each job, an index of the job files a pass has
-- already read, a record of job rows changed behind curator's back, and runs marked when their
-- job is deleted. (0002 is the scheduler's.)

-- The commit that last changed the job's file, and whether the work tree holds uncommitted
-- changes to it (0 or 1). Both NULL when jobs.d/ is not in a Git work tree.
ALTER TABLE jobs ADD COLUMN source_commit TEXT;
ALTER TABLE jobs ADD COLUMN source_dirty INTEGER;
CREATE INDEX jobs_by_source_file ON jobs (source_file);

-- Each valid job file as the reconciler last read it. A file whose stamp still matches is not
-- read again; a file with errors has no row, so it is read and reported on every pass.
CREATE TABLE job_files (
    -- the path under jobs.d/, `/`-separated, as in jobs.source_file
    path       TEXT PRIMARY KEY NOT NULL,
    -- a hash of the file's size, modification and change times and inode, taken before it
    -- was read
    stamp      INTEGER NOT NULL,
    -- 1 when the file had been modified well before it was read; 0 when a second write in the
    -- same tick of the file system's clock could have left the stamp as it was, so the file
    -- is read again at the next pass
    stable     INTEGER NOT NULL,
    git_commit TEXT,
    git_dirty  INTEGER
) WITHOUT ROWID;

-- Every job row written since the last applied pass, by anyone. The reconciler clears the
-- list when it commits a pass, so what is listed at the start of the next pass was written
-- outside curator: drift to compare with the files, found without reading every row. (The
-- triggers test for the row instead of using INSERT OR IGNORE: inside a trigger, the firing
-- statement's conflict policy replaces the trigger's own.)
CREATE TABLE jobs_touched (
    id          TEXT NOT NULL,
    source_file TEXT NOT NULL,
    PRIMARY KEY (id, source_file)
) WITHOUT ROWID;

CREATE TRIGGER jobs_touched_on_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO jobs_touched (id, source_file) SELECT NEW.id, NEW.source_file
    WHERE NOT EXISTS
        (SELECT 1 FROM jobs_touched WHERE id = NEW.id AND source_file = NEW.source_file);
END;

CREATE TRIGGER jobs_touched_on_update AFTER UPDATE ON jobs BEGIN
    INSERT INTO jobs_touched (id, source_file) SELECT OLD.id, OLD.source_file
    WHERE NOT EXISTS
        (SELECT 1 FROM jobs_touched WHERE id = OLD.id AND source_file = OLD.source_file);
    INSERT INTO jobs_touched (id, source_file) SELECT NEW.id, NEW.source_file
    WHERE NOT EXISTS
        (SELECT 1 FROM jobs_touched WHERE id = NEW.id AND source_file = NEW.source_file);
END;

CREATE TRIGGER jobs_touched_on_delete AFTER DELETE ON jobs BEGIN
    INSERT INTO jobs_touched (id, source_file) SELECT OLD.id, OLD.source_file
    WHERE NOT EXISTS
        (SELECT 1 FROM jobs_touched WHERE id = OLD.id AND source_file = OLD.source_file);
END;

-- When the job a run belongs to was deleted; NULL while it exists. A job recreated under the
-- same ID starts a new history: its old runs stay marked.
ALTER TABLE runs ADD COLUMN job_deleted_at TEXT;

-- What the index above was computed against: a key over curator's version, the directory,
-- the libraries and the providers (a different key means every file is checked again), and
-- the Git HEAD the stored commits were read at. Both change only when a pass is applied.
ALTER TABLE reconcile_state ADD COLUMN cache_key TEXT;
ALTER TABLE reconcile_state ADD COLUMN provenance_head TEXT;
