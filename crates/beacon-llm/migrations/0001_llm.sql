-- LLM usage records and budgets (guild-owned) and the pricing table (deployment-wide).
CREATE TABLE llm_usage (
    id                  {{auto_id}},
    guild_id            BIGINT NOT NULL,
    module              TEXT   NOT NULL,
    user_id             BIGINT,
    provider            TEXT   NOT NULL,
    model               TEXT   NOT NULL,
    input_tokens        BIGINT NOT NULL,
    output_tokens       BIGINT NOT NULL,
    cached_input_tokens BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    cost_micros         BIGINT NOT NULL,
    latency_ms          BIGINT NOT NULL,
    outcome             TEXT   NOT NULL,
    error_kind          TEXT,
    day                 BIGINT NOT NULL,
    at                  BIGINT NOT NULL
);
CREATE INDEX llm_usage_guild_day ON llm_usage (guild_id, day);
CREATE INDEX llm_usage_guild_user_day ON llm_usage (guild_id, user_id, day);
CREATE TABLE llm_budgets (
    guild_id          BIGINT PRIMARY KEY,
    daily_tokens      BIGINT,
    daily_cost_micros BIGINT,
    user_daily_tokens BIGINT,
    user_daily_calls  BIGINT,
    updated_at        BIGINT NOT NULL
);
CREATE TABLE llm_pricing (
    provider     TEXT   NOT NULL,
    model        TEXT   NOT NULL,
    input        BIGINT NOT NULL,
    cached_input BIGINT NOT NULL,
    cache_write  BIGINT NOT NULL,
    output       BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (provider, model)
);
