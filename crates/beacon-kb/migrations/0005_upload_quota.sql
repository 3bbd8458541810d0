-- One row per guild that uploaded a file. An upload writes it first, in the transaction that
-- checks the guild's quota and stores the file, so two uploads of one guild take turns (its row
-- lock on PostgreSQL; SQLite's write transactions take turns anyway) and cannot both pass the
-- quota on the same sum.
CREATE TABLE kb_upload_quota (
    guild_id   BIGINT PRIMARY KEY NOT NULL,
    updated_at BIGINT NOT NULL
);
