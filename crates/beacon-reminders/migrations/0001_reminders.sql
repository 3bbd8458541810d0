-- Reminders: what a member asked to be reminded of, where (a channel, or NULL for a DM), when
-- next (unix ms), and for a recurring one its rule (`every` days at `at_minute` local minutes
-- past midnight in `tz`). Delivery is a durable job per reminder (`reminders.deliver`).
CREATE TABLE reminders (
    id         {{auto_id}},
    guild_id   BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    channel_id BIGINT,
    text       TEXT   NOT NULL,
    next_at    BIGINT NOT NULL,
    every_days BIGINT,
    at_minute  BIGINT,
    tz         TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX reminders_member ON reminders (guild_id, user_id);
-- Each member's time zone (an IANA name), per server.
CREATE TABLE reminder_timezones (
    guild_id   BIGINT NOT NULL,
    user_id    BIGINT NOT NULL,
    tz         TEXT   NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
