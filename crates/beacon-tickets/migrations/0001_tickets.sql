-- Tickets, numbered per guild, with their SLA clocks and feedback.
CREATE TABLE tickets (
    guild_id            BIGINT NOT NULL,
    number              BIGINT NOT NULL,
    opener_id           BIGINT NOT NULL,
    channel_id          BIGINT,
    message_id          BIGINT,
    topic               TEXT   NOT NULL,
    status              TEXT   NOT NULL,
    claimed_by          BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    updated_by          BIGINT NOT NULL,
    last_activity_at    BIGINT NOT NULL,
    first_response_at   BIGINT,
    first_responder_id  BIGINT,
    closed_at           BIGINT,
    closed_by           BIGINT,
    paused_ms           BIGINT NOT NULL,
    paused_since        BIGINT,
    first_response_breached BIGINT NOT NULL,
    resolution_breached BIGINT NOT NULL,
    transcript_key      TEXT,
    rating              BIGINT,
    feedback            TEXT,
    reopened_count      BIGINT NOT NULL,
    PRIMARY KEY (guild_id, number)
);
CREATE INDEX tickets_channel ON tickets (guild_id, channel_id);
CREATE INDEX tickets_opener ON tickets (guild_id, opener_id, status);
CREATE INDEX tickets_created ON tickets (guild_id, created_at);
