//! `beacon llm pricing list|set`: the LLM pricing table in the database.

use std::sync::Arc;

use anyhow::Context;
use beacon_config::Config;
use beacon_llm::pricing::format_usd;
use beacon_llm::{Price, ProviderKind, UsageStore};

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
    Ok(())
}
