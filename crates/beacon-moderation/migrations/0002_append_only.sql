-- A case's history is never rewritten: updates of its rows are refused (a purge still deletes).
CREATE TRIGGER mod_case_events_append_only BEFORE UPDATE ON mod_case_events
BEGIN
    SELECT RAISE(ABORT, 'mod_case_events is append-only');
END;
