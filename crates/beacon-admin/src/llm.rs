//! The `llm` module: the LLM's per-guild settings (`llm.model`, read by `beacon-llm` itself, among
//! the models the operator allows), its usage tables (so a guild purge covers them), `/usage`
//! (what this server spent, against its budget, and the limits it sets for itself) and its part
//! of `/status`.

use std::sync::Arc;

use beacon_framework::app::App;
use beacon_framework::{
    Access, CommandCtx, CommandSpec, HandlerError, HandlerResult, Module, OptionSpec, Reply, SettingKind, SettingSpec,
    StatusField, async_trait,
};
use beacon_llm::pricing::format_usd;
use beacon_llm::usage::{BudgetView, GroupBy, GuildLimits, SummaryRow, day_of};
use beacon_llm::{BreakerState, LlmConfig, LlmError, UsageStore};
use beacon_store::{GuildStore, Schema};
use twilight_util::builder::embed::{EmbedBuilder, EmbedFieldBuilder};

use crate::COLOR;

/// The LLM service's settings, tables, `/usage` and status.
pub struct LlmModule {
    /// The models a guild may put in `llm.model` (the deployment's own first).
    choosable: Vec<String>,
}

impl LlmModule {
    /// The module for the deployment's `BEACON_LLM_*` settings (the models guilds may choose come
    /// from `BEACON_LLM_MODEL` and `BEACON_LLM_GUILD_MODELS`).
    pub fn new(settings: &beacon_config::LlmSettings) -> LlmModule {
        // A configuration that does not parse stops the process elsewhere (opening the LLM);
        // here it simply leaves nothing to choose.
        let choosable = LlmConfig::from_settings(settings).map(|c| c.choosable_models()).unwrap_or_default();
        LlmModule { choosable }
    }
}

#[async_trait]
impl Module for LlmModule {
    fn personal_data(&self) -> Vec<beacon_framework::privacy::PersonalData> {
        crate::privacy::llm_personal_data()
    }

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
            SettingKind::OneOf(self.choosable.clone()),
            serde_json::json!(""),
            "Chat model for this server's AI answers, among those the operator allows (empty: the deployment's model).",
        )]
    }

    fn commands(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new("usage", "What AI answers cost this server, and its budget", Access::Authorized)
                .option(OptionSpec::subcommand(
                    "show",
                    "AI usage today and over the last 30 days, by feature and model, against the budget",
                    vec![],
                ))
                .option(OptionSpec::subcommand(
                    "limit",
                    "Lower this server's AI budget (never above the operator's)",
                    vec![
                        OptionSpec::string("daily_usd", "Most this server spends a day, in US dollars (e.g. 0.50)")
                            .max_length(16),
                        OptionSpec::integer(
                            "member_daily_calls",
                            "Most AI answers one member gets a day (0: no per-member cap)",
                            Some(0),
                            Some(100_000),
                        ),
                        OptionSpec::boolean("clear", "Remove this server's own limits (the operator's budget applies)"),
                    ],
                )),
        ]
    }

    fn api_routes(&self, _app: &Arc<App>) -> Vec<beacon_framework::ApiRoute> {
        vec![
            beacon_framework::ApiRoute::new(
                axum::http::Method::GET,
                "/usage",
                "AI tokens and cost by day, module and model, against the budget",
                beacon_framework::Access::Authorized,
                axum::routing::get(api_usage),
            )
            .query(&[("days", "The last this many UTC days (1–366, default 30)")]),
        ]
    }

    fn pages(&self) -> Vec<beacon_framework::pages::PageSpec> {
        use beacon_framework::pages::{Field, Format, PageSpec, Section};
        let columns = || {
            vec![
                Field::text("Calls", "calls"),
                Field::text("Errors", "errors"),
                Field::text("Cache hits", "cache_hits"),
                Field::text("Input tokens", "input_tokens"),
                Field::text("Output tokens", "output_tokens"),
                Field::new("Cost", "cost_micros", Format::Micros),
            ]
        };
        let cost = Field::new("Cost", "cost_micros", Format::Micros);
        vec![PageSpec {
            slug: "usage",
            title: "Usage and cost",
            intro: "AI tokens and cost over the last 30 days, against this server's daily budget.",
            sections: vec![
                Section::Record {
                    title: "Budget",
                    api: "/usage",
                    fields: vec![
                        Field::new("Spent today", "today_cost_micros", Format::Micros),
                        Field::new("Daily budget", "budget.daily_cost_micros", Format::Micros),
                        Field::text("Daily tokens", "budget.daily_tokens"),
                        Field::text("Tokens per member a day", "budget.user_daily_tokens"),
                    ],
                },
                Section::Bars {
                    title: "Cost by day",
                    api: "/usage",
                    list: "by_day",
                    label: "key",
                    value: cost,
                    limit: Some("budget.daily_cost_micros"),
                    columns: columns(),
                },
                Section::Bars {
                    title: "Cost by module",
                    api: "/usage",
                    list: "by_module",
                    label: "key",
                    value: cost,
                    limit: None,
                    columns: columns(),
                },
                Section::Bars {
                    title: "Cost by model",
                    api: "/usage",
                    list: "by_model",
                    label: "key",
                    value: cost,
                    limit: None,
                    columns: columns(),
                },
            ],
        }]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let config = LlmConfig::from_settings(&ctx.app.config.llm).map_err(|e| {
            HandlerError::user(format!("AI answers are misconfigured on this deployment ({}).", e.kind()))
        })?;
        let usage = UsageStore::attach(ctx.app.store.clone());
        let now = beacon_store::now_ms();
        let text = match ctx.options.subcommand() {
            Some("limit") => set_limits(&ctx, &usage, &config).await?,
            _ => return show_usage(&ctx, &usage, &config, now).await,
        };
        ctx.reply(Reply::text(text).ephemeral()).await
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
    let budget = usage.budget_view(guild, &config.policy).await?.effective;
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

/// How the budget reads in `/usage`: what applies and who set it.
fn budget_lines(view: &BudgetView, spent_today: u64) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(match view.effective.daily_cost_micros {
        Some(limit) => {
            let pct = (u128::from(spent_today) * 100).checked_div(u128::from(limit)).unwrap_or(100).min(999);
            format!("**{} of {} spent today** ({pct}%)", format_usd(spent_today), format_usd(limit))
        }
        None => format!("**{} spent today** (no daily limit)", format_usd(spent_today)),
    });
    let ceiling = match view.operator.daily_cost_micros {
        Some(limit) => format!("{} a day", format_usd(limit)),
        None => "no daily limit".to_owned(),
    };
    let whose = if view.operator_set { "set for this server by the operator" } else { "the deployment's default" };
    lines.push(format!("Operator's budget: {ceiling} ({whose})."));
    if let Some(own) = view.own.daily_cost_micros {
        lines.push(format!("This server's own limit: {} a day.", format_usd(own)));
    }
    if let Some(tokens) = view.effective.daily_tokens {
        lines.push(format!("Token limit: {tokens} a day."));
    }
    match view.effective.user_daily_calls {
        Some(calls) => lines.push(format!("Each member: at most {calls} AI answers a day.")),
        None => lines.push("Each member: no daily cap (set one with `/usage limit member_daily_calls`).".to_owned()),
    }
    lines.push(
        "Budgets reset at 00:00 UTC. Over budget, members still get answers quoted from the knowledge base.".to_owned(),
    );
    lines
}

/// Rows of a summary as `key · calls · tokens · cost`, costliest first, at most `limit`.
fn summary_lines(rows: &[SummaryRow], limit: usize) -> String {
    if rows.is_empty() {
        return "No AI calls.".to_owned();
    }
    let mut rows: Vec<&SummaryRow> = rows.iter().collect();
    rows.sort_by(|a, b| b.cost_micros.cmp(&a.cost_micros).then(b.calls.cmp(&a.calls)).then(a.key.cmp(&b.key)));
    let mut out: Vec<String> = rows
        .iter()
        .take(limit)
        .map(|r| {
            let cached = if r.cache_hits > 0 { format!(" ({} cached)", r.cache_hits) } else { String::new() };
            format!(
                "`{}` · {} calls{cached} · {} tokens · {}",
                r.key,
                r.calls,
                r.usage.total(),
                format_usd(r.cost_micros)
            )
        })
        .collect();
    if rows.len() > limit {
        out.push(format!("… and {} more", rows.len() - limit));
    }
    out.join("\n")
}

fn total(rows: &[SummaryRow]) -> (u64, u64, u64) {
    rows.iter().fold((0, 0, 0), |(c, t, m), r| (c + r.calls, t + r.usage.total(), m + r.cost_micros))
}

async fn show_usage(ctx: &CommandCtx, usage: &UsageStore, config: &LlmConfig, now: i64) -> HandlerResult {
    let guild = ctx.guild_id();
    let day = day_of(now);
    let view = usage.budget_view(&ctx.guild, &config.policy).await.map_err(llm_error)?;
    let today_modules = usage.summary(Some(guild), GroupBy::Module, day, day).await.map_err(llm_error)?;
    let today_models = usage.summary(Some(guild), GroupBy::Model, day, day).await.map_err(llm_error)?;
    let month_modules = usage.summary(Some(guild), GroupBy::Module, day - 29, day).await.map_err(llm_error)?;
    let month_models = usage.summary(Some(guild), GroupBy::Model, day - 29, day).await.map_err(llm_error)?;
    let (today_calls, today_tokens, today_cost) = total(&today_modules);
    let (month_calls, month_tokens, month_cost) = total(&month_modules);
    let model = match config.chain.first() {
        None => "AI answers are off on this deployment: answers are quoted from the knowledge base.".to_owned(),
        Some(primary) => {
            let chosen = ctx.app.settings.get_string(&ctx.guild, beacon_llm::MODEL_SETTING).await.unwrap_or_default();
            match chosen.trim() {
                "" => format!("Model: `{}` (the deployment's)", primary.model),
                m if self_allows(config, m) => format!("Model: `{m}` (this server's `llm.model`)"),
                m => format!("Model: `{}` (`{m}` is no longer allowed by the operator)", primary.model),
            }
        }
    };
    let embed = EmbedBuilder::new()
        .title("AI usage — this server")
        .color(COLOR)
        .description(format!("{}\n{model}", budget_lines(&view, today_cost).join("\n")))
        .field(EmbedFieldBuilder::new(
            format!("Today — {today_calls} calls · {today_tokens} tokens · {}", format_usd(today_cost)),
            format!(
                "**By feature**\n{}\n**By model**\n{}",
                summary_lines(&today_modules, 5),
                summary_lines(&today_models, 5)
            ),
        ))
        .field(EmbedFieldBuilder::new(
            format!("Last 30 days — {month_calls} calls · {month_tokens} tokens · {}", format_usd(month_cost)),
            format!(
                "**By feature**\n{}\n**By model**\n{}",
                summary_lines(&month_modules, 5),
                summary_lines(&month_models, 5)
            ),
        ))
        .build();
    ctx.reply(Reply::embed(embed).ephemeral()).await
}

fn self_allows(config: &LlmConfig, model: &str) -> bool {
    config.choosable_models().iter().any(|m| m == model)
}

/// `/usage limit`: the server lowers its own budget; a value above the operator's is refused.
async fn set_limits(ctx: &CommandCtx, usage: &UsageStore, config: &LlmConfig) -> Result<String, HandlerError> {
    let daily = ctx.options.str("daily_usd");
    let calls = ctx.options.int("member_daily_calls");
    let clear = ctx.options.bool("clear").unwrap_or(false);
    if clear {
        if daily.is_some() || calls.is_some() {
            return Err(HandlerError::user("Use `clear` alone, or give new limits without it."));
        }
        usage.set_guild_limits(&ctx.guild, &GuildLimits::default()).await.map_err(llm_error)?;
        return Ok("This server's own AI limits are removed; the operator's budget applies.".to_owned());
    }
    if daily.is_none() && calls.is_none() {
        return Err(HandlerError::user(
            "Give `daily_usd` (e.g. 0.50), `member_daily_calls`, or both — or `clear` to remove your limits.",
        ));
    }
    let view = usage.budget_view(&ctx.guild, &config.policy).await.map_err(llm_error)?;
    let mut limits = view.own;
    if let Some(text) = daily {
        let micros = beacon_config::parse_usd(text).map_err(|e| HandlerError::user(format!("daily_usd: {e}.")))?;
        if let Some(ceiling) = view.operator.daily_cost_micros
            && micros > ceiling
        {
            return Err(HandlerError::user(format!(
                "daily_usd: this server's budget can be at most {} a day (set by the operator). \
                 You can lower it, not raise it.",
                format_usd(ceiling)
            )));
        }
        limits.daily_cost_micros = Some(micros);
    }
    if let Some(n) = calls {
        limits.member_daily_calls = u64::try_from(n).ok().filter(|n| *n > 0);
    }
    usage.set_guild_limits(&ctx.guild, &limits).await.map_err(llm_error)?;
    tracing::info!(daily = ?limits.daily_cost_micros, member_calls = ?limits.member_daily_calls, "guild AI limits set");
    let view = usage.budget_view(&ctx.guild, &config.policy).await.map_err(llm_error)?;
    let spend = match view.effective.daily_cost_micros {
        Some(l) => format!("{} a day", format_usd(l)),
        None => "no daily limit".to_owned(),
    };
    let member = match view.effective.user_daily_calls {
        Some(n) => format!("{n} AI answers per member a day"),
        None => "no per-member cap".to_owned(),
    };
    Ok(format!("This server's AI budget is now {spend}, {member}."))
}

fn llm_error(e: LlmError) -> HandlerError {
    HandlerError::internal(e)
}

/// `GET /api/v1/guilds/{guild_id}/usage?days=N`: tokens and cost by day, module and model over
/// the last `days` UTC days, against the budget that applies (the web API's view of `/usage show`).
async fn api_usage(
    ctx: beacon_framework::ApiGuild,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Result<axum::response::Response, beacon_framework::ApiError> {
    use axum::response::IntoResponse;
    use beacon_framework::ApiError;
    let days = match q.get("days") {
        None => 30,
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=366).contains(d))
            .ok_or_else(|| ApiError::invalid("days", "days must be a whole number from 1 to 366."))?,
    };
    let config = LlmConfig::from_settings(&ctx.app.config.llm).map_err(|e| ApiError::internal(e.kind()))?;
    let usage = UsageStore::attach(ctx.app.store.clone());
    let today = day_of(beacon_store::now_ms());
    let from = today - (days - 1);
    let guild = Some(ctx.guild_id());
    let rows = |r: Vec<SummaryRow>| {
        r.iter()
            .map(|s| {
                serde_json::json!({
                    "key": s.key,
                    "calls": s.calls,
                    "errors": s.errors,
                    "cache_hits": s.cache_hits,
                    "input_tokens": s.usage.input_tokens,
                    "output_tokens": s.usage.output_tokens,
                    "cost_micros": s.cost_micros,
                })
            })
            .collect::<Vec<_>>()
    };
    let by = |g: GroupBy| usage.summary(guild, g, from, today);
    let by_day = by(GroupBy::Day).await.map_err(ApiError::internal)?;
    let by_module = by(GroupBy::Module).await.map_err(ApiError::internal)?;
    let by_model = by(GroupBy::Model).await.map_err(ApiError::internal)?;
    let today_cost: u64 = usage
        .summary(guild, GroupBy::Module, today, today)
        .await
        .map_err(ApiError::internal)?
        .iter()
        .map(|r| r.cost_micros)
        .sum();
    let view = usage.budget_view(&ctx.guild, &config.policy).await.map_err(ApiError::internal)?;
    Ok(axum::Json(serde_json::json!({
        "days": days,
        "by_day": rows(by_day),
        "by_module": rows(by_module),
        "by_model": rows(by_model),
        "today_cost_micros": today_cost,
        "budget": {
            "daily_cost_micros": view.effective.daily_cost_micros,
            "daily_tokens": view.effective.daily_tokens,
            "user_daily_tokens": view.effective.user_daily_tokens,
            "user_daily_calls": view.effective.user_daily_calls,
            "set_by_operator": view.operator_set,
        },
    }))
    .into_response())
}
