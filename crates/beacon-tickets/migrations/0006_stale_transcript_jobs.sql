-- Transcripts expire with their rows (the `tickets.transcript_retention` setting, through
-- housekeeping) since the job kind `tickets.transcript_expiry`, one job per file, was retired.
-- Its jobs still waiting in a store have no handler: no worker claims them and they would stay
-- in the job backlog forever. They are removed; the transcripts they named expire by retention.
-- A job that already ended (done, failed, cancelled) is history and stays.
DELETE FROM beacon_jobs WHERE kind = 'tickets.transcript_expiry' AND state IN ('pending', 'running');
