use std::time::Duration;

use beacon_framework::app::App;
use beacon_framework::{Access, CommandCtx, CommandSpec, HandlerResult, Module, Reply, async_trait};
use beacon_llm::pricing::format_usd;
use beacon_llm::usage::day_of;
use beacon_llm::{BreakerState, LlmConfig, LlmError, UsageStore};
use beacon_store::GuildStore;
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};

use crate::COLOR;

/// `/status`: version, uptime, guilds, shards, dependency health and the LLM (each provider's
/// breaker, errors and calls today; this server's usage against its budget and its model), for
/// anyone, ephemeral.
pub struct StatusModule;

#[async_trait]
impl Module for StatusModule {
    fn name(&self) -> &'static str {
        "status"
    }

    fn description(&self) -> &'static str {
        "Health of this Beacon deployment"
    }

    fn can_disable(&self) -> bool {
        false
    }

    fn commands(&self) -> Vec<CommandSpec> {
        vec![CommandSpec::new("status", "Beacon's version, uptime, shards and health", Access::Everyone)]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let app = &ctx.app;
        let guilds = app.guild_count().await?;
        let checks = app.recent_checks().await;
        let shards = app.shards.snapshot();
        let shard_text = if !app.gateway_enabled {
            "not connected (no bot token; HTTP interactions only)".to_owned()
        } else if shards.is_empty() {
            "starting".to_owned()
        } else {
            shards
                .iter()
                .take(20)
                .map(|s| {
                    let latency = s.latency_ms.map(|l| format!("{l} ms")).unwrap_or_else(|| "–".into());
                    format!("#{} {:?} · {latency} · {} guilds", s.id, s.state, s.guilds)
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let health = checks
            .iter()
            .map(|c| {
                let icon = if c.ok { "🟢" } else { "🔴" };
                format!("{icon} {} ({}, {} ms)", c.name, c.detail, c.latency.as_millis())
            })
            .collect::<Vec<_>>()
            .join("\n");
        let embed = EmbedBuilder::new()
            .title("Beacon status")
            .color(COLOR)
            .field(EmbedFieldBuilder::new("Version", App::version()).inline())
            .field(EmbedFieldBuilder::new("Uptime", format_uptime(app.uptime())).inline())
            .field(EmbedFieldBuilder::new("Guilds", guilds.to_string()).inline())
            .field(EmbedFieldBuilder::new("Shards", shard_text))
            .field(EmbedFieldBuilder::new("Health", health))
            .field(EmbedFieldBuilder::new("LLM", llm_status(app, &ctx.guild).await))
            .build();
        ctx.reply(Reply::embed(embed).ephemeral()).await
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
        Ok(lines) => fit_field(&lines.join("\n")),
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

/// Discord's limit on an embed field's value, in characters.
const FIELD_LIMIT: usize = 1024;

/// `text` cut to fit an embed field (a long fallback chain must not make `/status` fail).
fn fit_field(text: &str) -> String {
    if text.chars().count() <= FIELD_LIMIT {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(FIELD_LIMIT - 1).collect();
    cut.push('…');
    cut
}

fn format_uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h {minutes}m")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{minutes}m {seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_llm_reports_fit_an_embed_field() {
        assert_eq!(fit_field("short"), "short");
        let long = "é".repeat(2000);
        let cut = fit_field(&long);
        assert_eq!(cut.chars().count(), FIELD_LIMIT);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn uptime_is_compact() {
        assert_eq!(format_uptime(Duration::from_secs(59)), "0m 59s");
        assert_eq!(format_uptime(Duration::from_secs(3_700)), "1h 1m");
        assert_eq!(format_uptime(Duration::from_secs(90_061)), "1d 1h 1m");
    }
}
