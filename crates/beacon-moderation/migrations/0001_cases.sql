-- Moderation cases, numbered per guild without gaps: the counter row is incremented in the same
-- transaction that inserts the case it numbers.
CREATE TABLE mod_case_counters (
    guild_id    BIGINT NOT NULL PRIMARY KEY,
    last_number BIGINT NOT NULL
);
-- One row per case. `reason` is the current reason; every change is also a row of
-- mod_case_events, which is never updated. `ends_at` is when a timed action (temporary ban,
-- timeout) is due to end, `ended_at` when it did (lifted by Beacon, or early by a later case).
CREATE TABLE mod_cases (
    guild_id        BIGINT NOT NULL,
    number          BIGINT NOT NULL,
    kind            TEXT   NOT NULL,
    target_id       BIGINT NOT NULL,
    moderator_id    BIGINT NOT NULL,
    reason          TEXT   NOT NULL,
    duration_ms     BIGINT,
    ends_at         BIGINT,
    ended_at        BIGINT,
    end_note        TEXT,
    source          TEXT   NOT NULL,
    dm_status       TEXT   NOT NULL,
    dm_detail       TEXT,
    failed          TEXT,
    audit_entry_id  BIGINT,
    related_case    BIGINT,
    log_channel_id  BIGINT,
    log_message_id  BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (guild_id, number)
);
CREATE INDEX mod_cases_target ON mod_cases (guild_id, target_id, kind, created_at);
CREATE INDEX mod_cases_created ON mod_cases (guild_id, created_at);
-- Each case's history: created, reason edits, the DM outcome, when its timed action ran,
-- appeals. Append-only (migration 2 refuses updates).
CREATE TABLE mod_case_events (
    id        {{auto_id}},
    guild_id  BIGINT NOT NULL,
    number    BIGINT NOT NULL,
    actor_id  BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    detail    TEXT   NOT NULL,
    at        BIGINT NOT NULL
);
CREATE INDEX mod_case_events_case ON mod_case_events (guild_id, number, id);
-- Ban appeals: at most one open appeal per case.
CREATE TABLE mod_appeals (
    id           {{auto_id}},
    guild_id     BIGINT NOT NULL,
    case_number  BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    body         TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    channel_id   BIGINT,
    message_id   BIGINT,
    created_at   BIGINT NOT NULL,
    decided_at   BIGINT,
    decided_by   BIGINT
);
CREATE UNIQUE INDEX mod_appeals_open ON mod_appeals (guild_id, case_number) WHERE state = 'open';
CREATE INDEX mod_appeals_case ON mod_appeals (guild_id, case_number, id);
