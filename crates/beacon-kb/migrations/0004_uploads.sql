-- Files a guild uploaded (`/kb upload`), kept as the text extracted from them: the `upload`
-- source named `source` lists its file from here, so every process syncs the same content.
-- `size_bytes` is the uploaded file's size, counted against the guild's quota.
CREATE TABLE kb_uploads (
    guild_id   BIGINT NOT NULL,
    source     TEXT NOT NULL,
    file_name  TEXT NOT NULL,
    format     TEXT NOT NULL,
    title      TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (guild_id, source)
);
