//! What the FAQ holds about members (the privacy contract, see `beacon_framework::privacy`).

use beacon_framework::privacy::PersonalData;
use beacon_framework::retention::Retention;

/// How long the search log (terms, PII-redacted, and their hit counts) is kept per server.
pub(crate) fn retention() -> Vec<Retention> {
    const DAY: u64 = 86_400;
    vec![Retention {
        kind: "FAQ searches (the search log and its gaps)",
        setting: "faq.search_log_retention",
        default: std::time::Duration::from_secs(90 * DAY),
        max: std::time::Duration::from_secs(365 * DAY),
        expire: &["DELETE FROM faq_search_log WHERE guild_id = $1 AND at < $2"],
    }]
}

/// Entries name who wrote them; searches are logged without who searched.
pub(crate) fn personal_data() -> Vec<PersonalData> {
    vec![
        PersonalData::member(
            "faq_entries",
            "FAQ entries the member wrote or edited last",
            "SELECT id, question, answer, tags, created_by, updated_by, created_at, updated_at, deleted_at \
             FROM faq_entries WHERE guild_id = $1 AND (created_by = $2 OR updated_by = $2) ORDER BY id",
        )
        .erase(&[
            "UPDATE faq_entries SET created_by = 0 WHERE guild_id = $1 AND created_by = $2",
            "UPDATE faq_entries SET updated_by = 0 WHERE guild_id = $1 AND updated_by = $2",
        ])
        .keeps("the entries are the server's knowledge and stay, without who wrote them"),
        PersonalData::nothing("faq_counters", "one id counter per server"),
        PersonalData::nothing(
            "faq_search_log",
            "search terms are logged without who searched (and PII-redacted), so none is about a member",
        ),
    ]
}
