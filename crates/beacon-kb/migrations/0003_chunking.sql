-- A guild's own chunk size and overlap (absent: the deployment's); changing them changes every
-- document's content hash, so the next sync re-chunks everything.
CREATE TABLE kb_chunking (
    guild_id      BIGINT PRIMARY KEY,
    max_chars     BIGINT NOT NULL,
    overlap_chars BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
