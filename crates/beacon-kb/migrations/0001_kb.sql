-- Knowledge base: configured sources, documents and their chunks (with embeddings).
CREATE TABLE kb_sources (
    id {{auto_id}},
    guild_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    sync_interval_ms BIGINT NOT NULL DEFAULT 3600000,
    last_sync_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (guild_id, name)
);
CREATE TABLE kb_documents (
    id {{auto_id}},
    guild_id BIGINT NOT NULL,
    source TEXT NOT NULL,
    doc_key TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT,
    content_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    UNIQUE (guild_id, source, doc_key)
);
CREATE TABLE kb_chunks (
    id {{auto_id}},
    guild_id BIGINT NOT NULL,
    document_id BIGINT NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
    ordinal BIGINT NOT NULL,
    heading_path TEXT NOT NULL,
    text TEXT NOT NULL,
    embed_model TEXT,
    embedding {{bytes}}
);
CREATE INDEX kb_chunks_guild ON kb_chunks (guild_id, document_id, ordinal);
