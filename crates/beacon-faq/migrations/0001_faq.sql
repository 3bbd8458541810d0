-- FAQ entries (numbered per guild), the per-guild counters, and the search log.
CREATE TABLE faq_entries (
    guild_id   BIGINT NOT NULL,
    id         BIGINT NOT NULL,
    question   TEXT   NOT NULL,
    answer     TEXT   NOT NULL,
    tags       TEXT   NOT NULL,
    pinned     BIGINT NOT NULL,
    created_by BIGINT NOT NULL,
    updated_by BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    views      BIGINT NOT NULL,
    deleted_at BIGINT,
    PRIMARY KEY (guild_id, id)
);
CREATE INDEX faq_entries_guild_updated ON faq_entries (guild_id, updated_at);
CREATE TABLE faq_counters (
    guild_id BIGINT PRIMARY KEY NOT NULL,
    last_id  BIGINT NOT NULL
);
CREATE TABLE faq_search_log (
    guild_id BIGINT NOT NULL,
    term     TEXT   NOT NULL,
    hits     BIGINT NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX faq_search_log_guild_at ON faq_search_log (guild_id, at);
