-- Change notices: a process that writes guild data other processes may cache (settings, access,
-- module switches, channel sets) records one row; every process polls for the others' rows.
CREATE TABLE guild_changes (
    seq        {{auto_id}},
    guild_id   BIGINT NOT NULL,
    origin     BIGINT NOT NULL,
    changed_at BIGINT NOT NULL
);
CREATE INDEX guild_changes_changed_at ON guild_changes (changed_at);
