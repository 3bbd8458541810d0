//! What the `llm` module's tables hold about members (the privacy contract, see
//! `beacon_framework::privacy`).

use beacon_framework::privacy::PersonalData;

/// Usage rows name the member who caused them; budgets and limits are the server's.
pub(crate) fn llm_personal_data() -> Vec<PersonalData> {
    vec![
        PersonalData::member(
            "llm_usage",
            "LLM calls made for the member (module, model, tokens, cost)",
            "SELECT module, provider, model, input_tokens, output_tokens, cost_micros, outcome, at \
             FROM llm_usage WHERE guild_id = $1 AND user_id = $2 ORDER BY id",
        )
        .erase(&["UPDATE llm_usage SET user_id = NULL WHERE guild_id = $1 AND user_id = $2"])
        .keeps("usage and cost stay for the server's budget and the operator's bill, without the member"),
        PersonalData::nothing("llm_budgets", "the operator's budget for the server"),
        PersonalData::nothing("llm_guild_limits", "the server's own limits"),
    ]
}
