-- A case's history is never rewritten: updates of its rows are refused (a purge still deletes).
CREATE FUNCTION mod_case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'mod_case_events is append-only';
END;
$$;
CREATE TRIGGER mod_case_events_append_only BEFORE UPDATE ON mod_case_events
    FOR EACH ROW EXECUTE FUNCTION mod_case_events_append_only();
