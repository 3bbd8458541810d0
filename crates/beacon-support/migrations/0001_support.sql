-- One row per answer (content only when the guild opted in) and the threads Beacon opened.
CREATE TABLE support_answers (
    id {{auto_id}},
    guild_id BIGINT NOT NULL,
    channel_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    trigger_kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    mode TEXT NOT NULL,
    cache_hit BIGINT NOT NULL DEFAULT 0,
    confidence DOUBLE PRECISION NOT NULL DEFAULT 0,
    sources TEXT NOT NULL DEFAULT '[]',
    question_chars BIGINT NOT NULL,
    answer_chars BIGINT NOT NULL,
    tokens_in BIGINT NOT NULL DEFAULT 0,
    tokens_out BIGINT NOT NULL DEFAULT 0,
    latency_ms BIGINT NOT NULL,
    message_id BIGINT,
    feedback BIGINT NOT NULL DEFAULT 0,
    feedback_by BIGINT,
    question TEXT,
    answer TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX support_answers_guild ON support_answers (guild_id, created_at);
CREATE INDEX support_answers_message ON support_answers (guild_id, message_id);
CREATE TABLE support_threads (
    guild_id BIGINT NOT NULL,
    thread_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (guild_id, thread_id)
);
