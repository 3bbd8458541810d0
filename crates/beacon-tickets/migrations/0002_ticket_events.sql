-- Each ticket's status history (who moved it, from what, to what, when).
CREATE TABLE ticket_events (
    id          {{auto_id}},
    guild_id    BIGINT NOT NULL,
    number      BIGINT NOT NULL,
    actor_id    BIGINT NOT NULL,
    kind        TEXT   NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    at          BIGINT NOT NULL
);
CREATE INDEX ticket_events_actor ON ticket_events (guild_id, actor_id, kind, at);
