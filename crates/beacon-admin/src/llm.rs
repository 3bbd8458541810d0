//! The `llm` module: the LLM's per-guild settings (`llm.model`, read by `beacon-llm` itself), its
//! usage tables (so a guild purge covers them), and its part of `/status`.

use std::sync::Arc;

use beacon_framework::app::App;
use beacon_framework::{Module, SettingKind, SettingSpec, StatusField, async_trait};
use beacon_llm::pricing::format_usd;
use beacon_llm::usage::day_of;
use beacon_llm::{BreakerState, LlmConfig, LlmError, UsageStore};
use beacon_store::{GuildStore, Schema};

/// The LLM service's settings, tables and status.
pub struct LlmModule;

#[async_trait]
impl Module for LlmModule {
    fn name(&self) -> &'static str {
        "llm"
    }

    fn description(&self) -> &'static str {
        "LLM provider settings of this server"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![beacon_llm::usage::SCHEMA]
    }

    fn settings(&self) -> Vec<SettingSpec> {
        vec![SettingSpec::new(
            beacon_llm::MODEL_SETTING,
            SettingKind::String { max_len: 100 },
            serde_json::json!(""),
            "Chat model for this server's LLM answers (empty: the deployment's BEACON_LLM_MODEL).",
        )]
    }

    async fn status(&self, app: &Arc<App>, guild: &GuildStore) -> Vec<StatusField> {
        vec![StatusField::new("LLM", llm_status(app, guild).await)]
    }
}

/// The LLM part of `/status`, from the deployment's `BEACON_LLM_*` configuration and the usage
/// records (shared by every worker): per provider of the chain its breaker state, latest error
/// and calls today; this server's model and its usage today against its daily budget.
async fn llm_status(app: &App, guild: &GuildStore) -> String {
    let config = match LlmConfig::from_settings(&app.config.llm) {
        Ok(config) => config,
        // The message names the variable, never a key; the details are in the startup logs.
        Err(e) => return format!("misconfigured ({})", e.kind()),
    };
    let Some(primary) = config.chain.first() else {
        return "none (extractive answers)".to_owned();
    };
    let now = beacon_store::now_ms();
    match llm_lines(app, guild, &config, &primary.model, now).await {
        Ok(lines) => lines.join("\n"),
        Err(e) => format!("usage records unavailable ({})", e.kind()),
    }
}

async fn llm_lines(
    app: &App,
    guild: &GuildStore,
    config: &LlmConfig,
    default_model: &str,
    now: i64,
) -> Result<Vec<String>, LlmError> {
    let usage = UsageStore::attach(app.store.clone());
    let day = day_of(now);
    let r = &config.reliability;
    let mut lines = Vec::new();
    // A guild without the setting (or a deployment that does not declare it) uses the default.
    let model = app.settings.get_string(guild, beacon_llm::MODEL_SETTING).await.unwrap_or_default();
    lines.push(match model.trim() {
        "" => format!("Model here: {default_model} (deployment default)"),
        m => format!("Model here: {m} (this server's llm.model)"),
    });
    for (i, p) in config.chain.iter().enumerate() {
        let h = usage.provider_health(p.kind.as_str(), day, r.breaker_failures).await?;
        let breaker = match h.breaker_state(r.breaker_failures, r.breaker_cooldown, now) {
            BreakerState::Closed => "🟢 closed",
            BreakerState::Open => "🔴 open",
            BreakerState::HalfOpen => "🟡 half-open",
        };
        let last = match &h.last_error {
            Some((kind, at)) => format!("last error {kind} <t:{}:R>", at / 1000),
            None => "no errors".to_owned(),
        };
        let role = if i == 0 { "primary" } else { "fallback" };
        lines.push(format!(
            "{}. {} {} ({role}) · breaker {breaker} · today {} calls, {} errors · {last}",
            i + 1,
            p.kind.as_str(),
            p.model,
            h.calls,
            h.errors
        ));
    }
    let budget = usage.budget(guild).await?;
    let today = usage.day_totals(guild, None, day).await?;
    let tokens = match budget.daily_tokens {
        Some(limit) => format!("{} of {limit} tokens", today.usage.total()),
        None => format!("{} tokens (no daily limit)", today.usage.total()),
    };
    let cost = match budget.daily_cost_micros {
        Some(limit) => format!("{} of {}", format_usd(today.cost_micros), format_usd(limit)),
        None => format!("{} (no daily limit)", format_usd(today.cost_micros)),
    };
    lines.push(format!("This server today: {tokens} · {cost}"));
    Ok(lines)
}
