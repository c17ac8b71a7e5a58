-- What each plugin's manifest said when it last started (on any replica), so validation and
-- reconcile can refuse a job whose scope the plugin cannot serve without starting the plugin
-- themselves.
CREATE TABLE provider_manifests (
    name     TEXT PRIMARY KEY,
    series   BOOLEAN NOT NULL,
    book     BOOLEAN NOT NULL,
    manifest JSONB NOT NULL,
    seen_at  TIMESTAMPTZ NOT NULL
);
