//! What moderation holds about members (the privacy contract, see `beacon_framework::privacy`).

use beacon_framework::privacy::PersonalData;

/// Every moderation table: cases and their history stay (the server's moderation record), the
/// member's own words in appeals go.
pub(crate) fn personal_data() -> Vec<PersonalData> {
    vec![
        PersonalData::member(
            "mod_cases",
            "moderation cases about the member, or taken by them",
            "SELECT number, kind, target_id, moderator_id, reason, duration_ms, ends_at, ended_at, end_note, \
             source, dm_status, created_at, updated_at FROM mod_cases \
             WHERE guild_id = $1 AND (target_id = $2 OR moderator_id = $2) ORDER BY number",
        )
        .keeps(
            "a case keeps the action, the member's id and the moderator's reason: it is the server's moderation \
             record, and a ban or timeout must stay enforceable (its timed end too)",
        ),
        PersonalData::member(
            "mod_case_events",
            "the history of those cases",
            "SELECT number, actor_id, kind, detail, at FROM mod_case_events WHERE guild_id = $1 AND (actor_id = $2 \
             OR number IN (SELECT number FROM mod_cases WHERE guild_id = $1 AND target_id = $2)) ORDER BY id",
        )
        .keeps("a case's history is append-only: it is the record of what moderators did"),
        PersonalData::member(
            "mod_appeals",
            "the member's appeals of a ban",
            "SELECT case_number, body, state, created_at, decided_at FROM mod_appeals \
             WHERE guild_id = $1 AND user_id = $2 ORDER BY id",
        )
        .erase(&["UPDATE mod_appeals SET body = '' WHERE guild_id = $1 AND user_id = $2"])
        .keeps("an appeal keeps its case, state and dates (the case's record); the text the member wrote is erased"),
        PersonalData::nothing("mod_case_counters", "one case counter per server"),
    ]
}
