-- Members who may not open tickets in a guild (staff's blocklist), with who blocked them and why.
CREATE TABLE ticket_blocks (
    guild_id   BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    blocked_by BIGINT NOT NULL,
    reason     TEXT   NOT NULL,
    at         BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
