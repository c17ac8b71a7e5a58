-- What each plugin's manifest said when it last started, so validation and reconcile can refuse
-- a job whose scope the plugin cannot serve without starting the plugin themselves.
CREATE TABLE provider_manifests (
    name     TEXT PRIMARY KEY NOT NULL,
    series   INTEGER NOT NULL,
    book     INTEGER NOT NULL,
    manifest TEXT NOT NULL,
    seen_at  TEXT NOT NULL
);
