-- What retrieval returned for each answer (chunk ids, whether or not the answer drew on them),
-- for the "documents never retrieved" report; and the question, PII-redacted, that a 👎 given
-- after the answer left the cache still records as a gap. `gap_question` is blanked after
-- support.gaps_retention like the gaps themselves, and with the member's erasure.
ALTER TABLE support_answers ADD COLUMN retrieved TEXT NOT NULL DEFAULT '[]';
ALTER TABLE support_answers ADD COLUMN gap_question TEXT;
