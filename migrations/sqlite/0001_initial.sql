-- The catalog: libraries, their series and books, metadata as JSON objects keyed by Codex
-- field names, per-field locks, and one external ID per provider with its last sync time.
CREATE TABLE libraries (
    id   TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL
);

CREATE TABLE series (
    id         INTEGER PRIMARY KEY,
    library_id TEXT NOT NULL REFERENCES libraries (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    metadata   TEXT NOT NULL DEFAULT '{}',
    locks      TEXT NOT NULL DEFAULT '[]',
    UNIQUE (library_id, key)
);

CREATE TABLE books (
    id        INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    metadata  TEXT NOT NULL DEFAULT '{}',
    locks     TEXT NOT NULL DEFAULT '[]',
    UNIQUE (series_id, key)
);

CREATE TABLE series_external_ids (
    series_id      INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    last_synced_at TEXT,
    PRIMARY KEY (series_id, provider)
);

CREATE TABLE book_external_ids (
    book_id        INTEGER NOT NULL REFERENCES books (id) ON DELETE CASCADE,
    provider       TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    last_synced_at TEXT,
    PRIMARY KEY (book_id, provider)
);

-- Jobs as the reconciler last applied them from jobs.d/.
CREATE TABLE jobs (
    id           TEXT PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    library_id   TEXT NOT NULL,
    provider     TEXT NOT NULL,
    enabled      INTEGER NOT NULL,
    spec         TEXT NOT NULL,
    source       TEXT NOT NULL,
    source_file  TEXT NOT NULL,
    source_line  INTEGER NOT NULL,
    content_hash TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Runs outlive their job: job_id is not a foreign key, so a deleted job's history stays.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY,
    job_id      TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    status      TEXT NOT NULL,
    slot        TEXT,
    queued_at   TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    totals      TEXT NOT NULL DEFAULT '{}',
    error       TEXT,
    -- `host:pid` of the process running it, so a restart can tell orphans from live runs.
    owner       TEXT
);
CREATE INDEX runs_by_job ON runs (job_id, id);
CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE run_entries (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    entry   TEXT NOT NULL,
    title   TEXT,
    outcome TEXT NOT NULL,
    reason  TEXT,
    changes TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (run_id, seq)
);

-- The outcome of the last reconcile pass, for status reads.
CREATE TABLE reconcile_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    finished_at TEXT NOT NULL,
    summary     TEXT NOT NULL
);
