//! `beacon llm pricing list|set`: the LLM pricing table in the database (running processes pick
//! a change up at their next AI call); `beacon llm budget show|set|clear`: a guild's budget.

use std::sync::Arc;

use anyhow::Context;
use beacon_config::Config;
use beacon_llm::pricing::format_usd;
use beacon_llm::usage::day_of;
use beacon_llm::{Budget, LlmConfig, Price, ProviderKind, UsageStore};

use crate::backends::open_store;

async fn usage_store(config: &Config) -> anyhow::Result<UsageStore> {
    let store = open_store(config).await?;
    UsageStore::open(store).await.context("opening the LLM usage tables")
}

/// Prints every price: micro-dollars per million tokens, and the same in dollars.
pub async fn pricing_list(config: Arc<Config>) -> anyhow::Result<()> {
    let table = usage_store(&config).await?.pricing().await.context("reading prices")?;
    println!("Prices per million tokens (micro-dollars, then USD): input · cached input · cache write · output");
    for p in table.all() {
        println!(
            "{:<18} {:<28} {:>11} {:>11} {:>11} {:>11}   {} · {} · {} · {}",
            p.provider,
            p.model,
            p.input,
            p.cached_input,
            p.cache_write,
            p.output,
            format_usd(p.input),
            format_usd(p.cached_input),
            format_usd(p.cache_write),
            format_usd(p.output),
        );
    }
    Ok(())
}

/// What `beacon llm pricing set` was given.
#[derive(Debug, Clone)]
pub struct PriceInput {
    /// Provider; the configured `BEACON_LLM_PROVIDER` when `None`.
    pub provider: Option<String>,
    /// Model name as the provider spells it.
    pub model: String,
    /// Micro-dollars per million uncached input tokens.
    pub input: u64,
    /// Micro-dollars per million output tokens.
    pub output: u64,
    /// Cached-input price; the stored one (or `input`) when `None`.
    pub cached_input: Option<u64>,
    /// Cache-write price; the stored one (or `input`) when `None`.
    pub cache_write: Option<u64>,
}

/// Adds or replaces one model's price.
pub async fn pricing_set(config: Arc<Config>, given: PriceInput) -> anyhow::Result<()> {
    let provider = match given.provider.as_deref() {
        Some(p) => p.to_owned(),
        None if config.llm.is_enabled() => config.llm.provider().to_owned(),
        None => anyhow::bail!(
            "no LLM provider configured: pass --provider (openai, anthropic, gemini, xai, openai-compatible)"
        ),
    };
    let provider = provider.parse::<ProviderKind>()?.as_str().to_owned();
    let model = given.model.trim();
    if model.is_empty() {
        anyhow::bail!("the model name is empty");
    }
    let usage = usage_store(&config).await?;
    let table = usage.pricing().await.context("reading prices")?;
    // Only an exact entry is kept as the base; a prefix match belongs to another model.
    let existing = table.all().into_iter().find(|p| p.provider == provider && p.model == model);
    let price = Price {
        provider: provider.clone(),
        model: model.to_owned(),
        input: given.input,
        cached_input: given.cached_input.or(existing.as_ref().map(|p| p.cached_input)).unwrap_or(given.input),
        cache_write: given.cache_write.or(existing.as_ref().map(|p| p.cache_write)).unwrap_or(given.input),
        output: given.output,
    };
    usage.set_price(&price).await.context("saving the price")?;
    println!(
        "{provider} {model}: input {} · cached input {} · cache write {} · output {} per million tokens",
        format_usd(price.input),
        format_usd(price.cached_input),
        format_usd(price.cache_write),
        format_usd(price.output)
    );
    println!("Running Beacon processes use it from their next AI call.");
    Ok(())
}

fn limit(value: Option<u64>, unit: &str) -> String {
    value.map_or_else(|| "unlimited".to_owned(), |v| format!("{v} {unit}"))
}

fn usd_limit(value: Option<u64>) -> String {
    value.map_or_else(|| "unlimited".to_owned(), format_usd)
}

/// Prints what applies to `guild`, who set each part, and today's spend.
pub async fn budget_show(config: Arc<Config>, guild: u64) -> anyhow::Result<()> {
    let policy = LlmConfig::from_settings(&config.llm).context("configuring the LLM (BEACON_LLM_*)")?.policy;
    let usage = usage_store(&config).await?;
    let g = usage.store().guild(guild);
    let view = usage.budget_view(&g, &policy).await.context("reading the budget")?;
    let today = usage.day_totals(&g, None, day_of(beacon_store::now_ms())).await.context("reading usage")?;
    let source = if view.operator_set { "set for this guild" } else { "BEACON_LLM_GUILD_DAILY_BUDGET default" };
    println!("Guild {guild}");
    println!(
        "  operator ({source}): {} a day, {}",
        usd_limit(view.operator.daily_cost_micros),
        limit(view.operator.daily_tokens, "tokens a day")
    );
    println!(
        "  guild's own (/usage limit): {} a day, {}",
        usd_limit(view.own.daily_cost_micros),
        limit(view.own.member_daily_calls, "calls per member a day")
    );
    let e = &view.effective;
    println!(
        "  enforced: {} a day · {} · {} · {}",
        usd_limit(e.daily_cost_micros),
        limit(e.daily_tokens, "tokens a day"),
        limit(e.user_daily_calls, "calls per member a day"),
        limit(e.user_daily_tokens, "tokens per member a day")
    );
    println!("  today: {} calls · {} tokens · {}", today.calls, today.usage.total(), format_usd(today.cost_micros));
    Ok(())
}

/// What `beacon llm budget set` was given; a limit not given is unlimited.
#[derive(Debug, Clone)]
pub struct BudgetInput {
    /// US dollars per UTC day, as typed.
    pub daily_usd: Option<String>,
    /// Tokens per UTC day.
    pub daily_tokens: Option<u64>,
    /// AI calls per member per UTC day.
    pub member_daily_calls: Option<u64>,
    /// Tokens per member per UTC day.
    pub member_daily_tokens: Option<u64>,
}

/// Sets the operator's budget for `guild`.
pub async fn budget_set(config: Arc<Config>, guild: u64, given: BudgetInput) -> anyhow::Result<()> {
    if guild == 0 {
        anyhow::bail!("the guild id must be a Discord id (a positive integer)");
    }
    let daily_cost_micros = match given.daily_usd.as_deref() {
        Some(text) => Some(beacon_config::parse_usd(text).map_err(|e| anyhow::anyhow!("--daily-usd: {e}"))?),
        None => None,
    };
    let budget = Budget {
        daily_tokens: given.daily_tokens,
        daily_cost_micros,
        user_daily_tokens: given.member_daily_tokens,
        user_daily_calls: given.member_daily_calls,
    };
    let usage = usage_store(&config).await?;
    usage.set_budget(&usage.store().guild(guild), &budget).await.context("saving the budget")?;
    println!(
        "Guild {guild}: {} a day, {}, {}, {}.",
        usd_limit(budget.daily_cost_micros),
        limit(budget.daily_tokens, "tokens a day"),
        limit(budget.user_daily_calls, "calls per member a day"),
        limit(budget.user_daily_tokens, "tokens per member a day")
    );
    Ok(())
}

/// Removes the operator's budget for `guild` (the deployment default applies again).
pub async fn budget_clear(config: Arc<Config>, guild: u64) -> anyhow::Result<()> {
    let usage = usage_store(&config).await?;
    if usage.clear_budget(&usage.store().guild(guild)).await.context("clearing the budget")? {
        println!("Guild {guild}: budget removed; the deployment's default applies.");
    } else {
        println!("Guild {guild} had no budget of its own; the deployment's default applies.");
    }
    Ok(())
}
