-- The scheduled time (unix ms) of the last run handled (delivered, refused by Discord or skipped
-- as missed): a job re-run after a crashed worker's lease finds its run done and only schedules
-- the next one.
ALTER TABLE reminders ADD COLUMN last_run BIGINT;
