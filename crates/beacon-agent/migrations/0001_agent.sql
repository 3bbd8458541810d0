-- The agent bridge: members' accounts on the agent service (API keys sealed with the deployment's
-- secret key, bound to the guild and member), the thread of each session, and every call made,
-- for /status and the metrics. All guild-owned.
CREATE TABLE agent_accounts (
    guild_id             BIGINT NOT NULL,
    user_id              BIGINT NOT NULL,
    service_user_id      TEXT   NOT NULL,
    api_key_sealed       TEXT   NOT NULL,
    current_project_id   TEXT,
    current_project_name TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
CREATE TABLE agent_threads (
    guild_id     BIGINT NOT NULL,
    thread_id    BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    project_id   TEXT   NOT NULL,
    project_name TEXT   NOT NULL,
    session_id   TEXT   NOT NULL,
    session_name TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (guild_id, thread_id)
);
CREATE TABLE agent_calls (
    id         {{auto_id}},
    guild_id   BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    op         TEXT   NOT NULL,
    outcome    TEXT   NOT NULL,
    latency_ms BIGINT NOT NULL,
    at         BIGINT NOT NULL
);
CREATE INDEX agent_calls_guild_at ON agent_calls (guild_id, at);
