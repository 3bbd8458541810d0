//! What the agent bridge holds about members (the privacy contract, see `beacon_framework::privacy`).

use beacon_framework::privacy::PersonalData;

/// The member's registration, their sessions' threads and the log of their calls: all erased.
pub(crate) fn personal_data() -> Vec<PersonalData> {
    vec![
        PersonalData::member(
            "agent_accounts",
            "the member's registration with the agent service",
            "SELECT service_user_id, current_project_id, current_project_name, created_at, updated_at \
             FROM agent_accounts WHERE guild_id = $1 AND user_id = $2",
        )
        .withholds("the API key is the member's credential at the agent service: it is stored sealed and never shown")
        .erase(&["DELETE FROM agent_accounts WHERE guild_id = $1 AND user_id = $2"]),
        PersonalData::member(
            "agent_threads",
            "threads that continue the member's agent sessions",
            "SELECT thread_id, project_id, project_name, session_id, session_name, created_at \
             FROM agent_threads WHERE guild_id = $1 AND user_id = $2",
        )
        .erase(&["DELETE FROM agent_threads WHERE guild_id = $1 AND user_id = $2"]),
        PersonalData::member(
            "agent_calls",
            "the member's calls to the agent service (operation, outcome, time)",
            "SELECT op, outcome, latency_ms, at FROM agent_calls WHERE guild_id = $1 AND user_id = $2 ORDER BY id",
        )
        .erase(&["DELETE FROM agent_calls WHERE guild_id = $1 AND user_id = $2"]),
    ]
}
