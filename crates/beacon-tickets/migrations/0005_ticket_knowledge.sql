-- Resolved tickets kept as knowledge (tickets.learn_from_resolved): the ticket's question and
-- staff's answers, PII-redacted, one knowledge-base document per ticket. Removed by
-- `/ticket forget`, by a reopen, and all at once when the setting is turned off.
CREATE TABLE ticket_knowledge (
    guild_id    BIGINT NOT NULL,
    number      BIGINT NOT NULL,
    question    TEXT   NOT NULL,
    answer      TEXT   NOT NULL,
    resolved_by BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (guild_id, number)
);
