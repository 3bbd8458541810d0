-- Core schema (SQLite). Integer columns are declared BIGINT and booleans as INTEGER 0/1 so the
-- `Any` driver decodes them the same way as on PostgreSQL.

CREATE TABLE guilds (
    guild_id   BIGINT PRIMARY KEY NOT NULL,
    name       TEXT   NOT NULL,
    owner_id   BIGINT,
    joined_at  BIGINT NOT NULL,
    left_at    BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX guilds_left_at ON guilds (left_at);

CREATE TABLE authorized_users (
    guild_id   BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    granted_by BIGINT,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE guild_settings (
    guild_id   BIGINT NOT NULL,
    key        TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    updated_by BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (guild_id, key)
);

CREATE TABLE setting_audit (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id          BIGINT NOT NULL,
    key               TEXT   NOT NULL,
    old_value         TEXT,
    new_value         TEXT,
    actor_id          BIGINT NOT NULL,
    at                BIGINT NOT NULL,
    reverted_audit_id BIGINT
);
CREATE INDEX setting_audit_guild_key ON setting_audit (guild_id, key, id);

CREATE TABLE guild_modules (
    guild_id   BIGINT NOT NULL,
    module     TEXT   NOT NULL,
    enabled    BIGINT NOT NULL,
    updated_by BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (guild_id, module)
);

CREATE TABLE processed_claims (
    kind       TEXT   NOT NULL,
    id         BIGINT NOT NULL,
    claimed_at BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX processed_claims_claimed_at ON processed_claims (claimed_at);

CREATE TABLE beacon_module_migrations (
    module      TEXT   NOT NULL,
    version     BIGINT NOT NULL,
    description TEXT   NOT NULL,
    checksum    TEXT   NOT NULL,
    applied_at  BIGINT NOT NULL,
    PRIMARY KEY (module, version)
);

-- Every table holding guild-owned rows (a `guild_id BIGINT` column); purged on retention expiry.
CREATE TABLE beacon_guild_tables (
    table_name    TEXT   PRIMARY KEY NOT NULL,
    registered_at BIGINT NOT NULL
);
INSERT INTO beacon_guild_tables (table_name, registered_at) VALUES
    ('authorized_users', 0),
    ('guild_settings', 0),
    ('setting_audit', 0),
    ('guild_modules', 0);
