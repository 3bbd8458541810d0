-- Staff notes about members, per guild.
CREATE TABLE example_notes (
    id         {{auto_id}},
    guild_id   BIGINT NOT NULL,
    author_id  BIGINT NOT NULL,
    body       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX example_notes_guild ON example_notes (guild_id, id);
