-- Web API login. A session is a user's, across guilds, so neither table has a guild column.
-- The cookie holds a random id; the table keeps only its SHA-256. Discord's tokens are sealed
-- with the keyring for this session (associated data `api-session:{id_hash}`).
CREATE TABLE api_sessions (
    id_hash           TEXT   PRIMARY KEY NOT NULL,
    user_id           BIGINT NOT NULL,
    username          TEXT   NOT NULL,
    csrf_token        TEXT   NOT NULL,
    tokens            TEXT   NOT NULL,
    token_expires_at  BIGINT NOT NULL,
    guilds            TEXT   NOT NULL,
    guilds_fetched_at BIGINT NOT NULL,
    created_at        BIGINT NOT NULL,
    last_seen_at      BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL
);
CREATE INDEX api_sessions_user ON api_sessions (user_id);
CREATE INDEX api_sessions_expires ON api_sessions (expires_at);

-- Logins under way: the SHA-256 of the `state` sent to Discord and the sealed PKCE verifier,
-- deleted when the callback uses them (once) or after 10 minutes.
CREATE TABLE api_logins (
    state_hash TEXT   PRIMARY KEY NOT NULL,
    verifier   TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
