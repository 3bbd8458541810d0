-- Durable jobs: one row per scheduled run, leased by the worker that runs it.
CREATE TABLE beacon_jobs (
    id           {{auto_id}},
    guild_id     BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    payload      TEXT   NOT NULL,
    dedupe_key   TEXT,
    run_at       BIGINT NOT NULL,
    state        TEXT   NOT NULL,
    attempts     BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX beacon_jobs_due ON beacon_jobs (state, run_at);
CREATE UNIQUE INDEX beacon_jobs_dedupe ON beacon_jobs (guild_id, dedupe_key)
    WHERE state = 'pending' AND dedupe_key IS NOT NULL;
