-- The questions Beacon abstained on or that got 👎, for the gaps report in /support-stats: the
-- PII-redacted question and its normalised form (lower-cased, punctuation and whitespace folded)
-- that groups near-identical questions. One row per answer and kind, so a 👎 given twice counts
-- once (and only the first posts the staff notice). Rows older than support.gaps_retention are
-- deleted as new ones arrive; the guild's purge removes the rest.
CREATE TABLE support_gaps (
    id {{auto_id}},
    guild_id BIGINT NOT NULL,
    answer_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    normalized TEXT NOT NULL,
    question TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX support_gaps_answer ON support_gaps (guild_id, answer_id, kind);
CREATE INDEX support_gaps_guild ON support_gaps (guild_id, created_at);
