-- The stamp of each guild's derived search index: every committed sync moves it.
CREATE TABLE kb_index_versions (
    guild_id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
