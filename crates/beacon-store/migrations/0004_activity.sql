-- One row per slash command run: which command, how it ended (`ok`, `refused` — the member was
-- told why — or `failed`), when. No member and no free text: what `/status` and the usage figures
-- count. Kept for `core.usage_retention`.
CREATE TABLE command_usage (
    id       {{auto_id}},
    guild_id BIGINT NOT NULL,
    command  TEXT   NOT NULL,
    outcome  TEXT   NOT NULL,
    at       BIGINT NOT NULL
);
CREATE INDEX command_usage_guild_at ON command_usage (guild_id, at);
-- One row per handler failure: the module, the reference the member was shown, the error's
-- message with personal data redacted, when. `/status` shows the latest to staff. Kept for
-- `core.errors_retention`.
CREATE TABLE handler_errors (
    id        {{auto_id}},
    guild_id  BIGINT NOT NULL,
    module    TEXT   NOT NULL,
    reference BIGINT NOT NULL,
    message   TEXT   NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX handler_errors_guild_at ON handler_errors (guild_id, at);
