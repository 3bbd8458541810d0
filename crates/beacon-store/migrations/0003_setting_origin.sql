-- Which process made a setting change, so every other process sharing the database announces it
-- to its own listeners (rows from before this column have 0 and are never announced again).
ALTER TABLE setting_audit ADD COLUMN origin BIGINT NOT NULL DEFAULT 0;
CREATE INDEX setting_audit_at ON setting_audit (at);
