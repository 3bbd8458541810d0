-- Ticket panels: each with its own destination (a parent channel for private threads, or a
-- category for ticket channels; neither = the guild's tickets.* settings), staff role and form
-- questions (a JSON array of up to 5 labels). Tickets remember the panel they came from and
-- the member's answers (a JSON array of {"question", "answer"}), kept when a panel is deleted.
CREATE TABLE ticket_panels (
    id            {{auto_id}},
    guild_id      BIGINT NOT NULL,
    name          TEXT   NOT NULL,
    title         TEXT   NOT NULL,
    description   TEXT   NOT NULL,
    channel_id    BIGINT,
    category_id   BIGINT,
    staff_role_id BIGINT,
    questions     TEXT   NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX ticket_panels_name ON ticket_panels (guild_id, name);
ALTER TABLE tickets ADD COLUMN panel_id BIGINT;
ALTER TABLE tickets ADD COLUMN answers TEXT;
