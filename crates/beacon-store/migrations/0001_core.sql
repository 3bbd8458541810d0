-- Core schema: guilds, delegated access, settings and their audit trail, module switches and
-- idempotency claims. Integer columns are BIGINT and booleans BIGINT 0/1 so the `Any` driver
-- decodes them the same way on SQLite and PostgreSQL; `{{auto_id}}` is the one difference.

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
    id                {{auto_id}},
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
