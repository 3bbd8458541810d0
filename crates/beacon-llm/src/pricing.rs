//! Model prices and cost computation, in integer micro-dollars so sums are exact.
//!
//! Prices are micro-dollars per million tokens (`$2.50 / MTok` is `2_500_000`), so one token
//! costs exactly `price` pico-dollars. A call's cost is the exact pico-dollar sum rounded **up**
//! to whole micro-dollars once per call (never under-counting); summaries add those integers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::Usage;

/// The price of one model, in micro-dollars per million tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    /// Provider name (`openai`, `anthropic`, `gemini`, `xai`, `openai-compatible`).
    pub provider: String,
    /// Model id, or a prefix of dated ids (`claude-haiku-4-5` also prices
    /// `claude-haiku-4-5-20251001`).
    pub model: String,
    /// Uncached prompt tokens.
    pub input: u64,
    /// Prompt tokens read from the provider's cache.
    pub cached_input: u64,
    /// Prompt tokens written to the provider's cache.
    pub cache_write: u64,
    /// Generated tokens.
    pub output: u64,
}

/// Seed prices (USD per million tokens: input, cached input, cache write, output), as published
/// by the providers in mid-2026. Operators edit them with `beacon llm pricing set …`; prefixes
/// cover dated snapshots.
const SEED: &[(&str, &str, u64, u64, u64, u64)] = &[
    // OpenAI: cache writes cost the normal input price.
    ("openai", "gpt-5.5", 5_000_000, 500_000, 5_000_000, 30_000_000),
    ("openai", "gpt-5.4", 2_500_000, 250_000, 2_500_000, 15_000_000),
    ("openai", "gpt-5.4-mini", 750_000, 75_000, 750_000, 4_500_000),
    ("openai", "gpt-5.4-nano", 200_000, 20_000, 200_000, 1_250_000),
    ("openai", "gpt-5", 1_250_000, 125_000, 1_250_000, 10_000_000),
    ("openai", "gpt-5-mini", 250_000, 25_000, 250_000, 2_000_000),
    ("openai", "gpt-5-nano", 50_000, 5_000, 50_000, 400_000),
    ("openai", "gpt-4.1", 2_000_000, 500_000, 2_000_000, 8_000_000),
    ("openai", "gpt-4.1-mini", 400_000, 100_000, 400_000, 1_600_000),
    ("openai", "gpt-4.1-nano", 100_000, 25_000, 100_000, 400_000),
    ("openai", "gpt-4o", 2_500_000, 1_250_000, 2_500_000, 10_000_000),
    ("openai", "gpt-4o-mini", 150_000, 75_000, 150_000, 600_000),
    ("openai", "text-embedding-3-small", 20_000, 20_000, 20_000, 0),
    ("openai", "text-embedding-3-large", 130_000, 130_000, 130_000, 0),
    // Anthropic: 5-minute cache writes at 1.25x, reads at 0.1x.
    ("anthropic", "claude-opus-4-6", 5_000_000, 500_000, 6_250_000, 25_000_000),
    ("anthropic", "claude-opus-4-5", 5_000_000, 500_000, 6_250_000, 25_000_000),
    ("anthropic", "claude-opus-4-1", 15_000_000, 1_500_000, 18_750_000, 75_000_000),
    ("anthropic", "claude-sonnet-4-6", 3_000_000, 300_000, 3_750_000, 15_000_000),
    ("anthropic", "claude-sonnet-4-5", 3_000_000, 300_000, 3_750_000, 15_000_000),
    ("anthropic", "claude-sonnet-4", 3_000_000, 300_000, 3_750_000, 15_000_000),
    ("anthropic", "claude-haiku-4-5", 1_000_000, 100_000, 1_250_000, 5_000_000),
    ("anthropic", "claude-3-5-haiku", 800_000, 80_000, 1_000_000, 4_000_000),
    // Gemini (prompts up to 200k tokens); context-cache reads at 0.1x.
    ("gemini", "gemini-3.1-pro", 2_000_000, 200_000, 2_000_000, 12_000_000),
    ("gemini", "gemini-3.5-flash", 1_500_000, 150_000, 1_500_000, 9_000_000),
    ("gemini", "gemini-3-flash", 500_000, 50_000, 500_000, 3_000_000),
    ("gemini", "gemini-3.1-flash-lite", 250_000, 25_000, 250_000, 1_500_000),
    ("gemini", "gemini-2.5-pro", 1_250_000, 125_000, 1_250_000, 10_000_000),
    ("gemini", "gemini-2.5-flash", 300_000, 30_000, 300_000, 2_500_000),
    ("gemini", "gemini-2.5-flash-lite", 100_000, 10_000, 100_000, 400_000),
    ("gemini", "gemini-embedding-001", 150_000, 150_000, 150_000, 0),
    // xAI
    ("xai", "grok-4", 3_000_000, 750_000, 3_000_000, 15_000_000),
    ("xai", "grok-4-fast", 200_000, 50_000, 200_000, 500_000),
    ("xai", "grok-3-mini", 300_000, 75_000, 300_000, 500_000),
    ("xai", "grok-code-fast-1", 200_000, 20_000, 200_000, 1_500_000),
];

/// Prices by `(provider, model)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PricingTable {
    prices: BTreeMap<(String, String), Price>,
}

impl PricingTable {
    /// The built-in seed prices.
    pub fn seeded() -> PricingTable {
        let mut table = PricingTable::default();
        for &(provider, model, input, cached_input, cache_write, output) in SEED {
            table.set(Price {
                provider: provider.to_owned(),
                model: model.to_owned(),
                input,
                cached_input,
                cache_write,
                output,
            });
        }
        table
    }

    /// Adds or replaces a price.
    pub fn set(&mut self, price: Price) {
        self.prices.insert((price.provider.clone(), price.model.clone()), price);
    }

    /// Removes a price; `true` if it existed.
    pub fn remove(&mut self, provider: &str, model: &str) -> bool {
        self.prices.remove(&(provider.to_owned(), model.to_owned())).is_some()
    }

    /// The price of `model`: an exact entry, else the longest entry that is a prefix of the
    /// model id followed by `-` (dated snapshots such as `gpt-4.1-mini-2025-04-14`).
    pub fn lookup(&self, provider: &str, model: &str) -> Option<&Price> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        if let Some(p) = self.prices.get(&(provider.to_owned(), model.to_owned())) {
            return Some(p);
        }
        self.prices
            .values()
            .filter(|p| {
                p.provider == provider
                    && model.len() > p.model.len()
                    && model.starts_with(&p.model)
                    && model[p.model.len()..].starts_with('-')
            })
            .max_by_key(|p| p.model.len())
    }

    /// All prices, sorted by provider then model.
    pub fn all(&self) -> Vec<Price> {
        self.prices.values().cloned().collect()
    }
}

/// Cost of `usage` at `price`, in micro-dollars, rounded up once.
pub fn cost_micros(price: &Price, usage: &Usage) -> u64 {
    let uncached =
        usage.input_tokens.saturating_sub(usage.cached_input_tokens).saturating_sub(usage.cache_write_tokens);
    let pico = u128::from(uncached) * u128::from(price.input)
        + u128::from(usage.cached_input_tokens) * u128::from(price.cached_input)
        + u128::from(usage.cache_write_tokens) * u128::from(price.cache_write)
        + u128::from(usage.output_tokens) * u128::from(price.output);
    u64::try_from(pico.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// Formats micro-dollars as `$1.234567`.
pub fn format_usd(micros: u64) -> String {
    format!("${}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_lookup_prefers_the_longest_entry() {
        let t = PricingTable::seeded();
        assert_eq!(t.lookup("openai", "gpt-4.1-mini-2025-04-14").unwrap().model, "gpt-4.1-mini");
        assert_eq!(t.lookup("openai", "gpt-4.1-2025-04-14").unwrap().model, "gpt-4.1");
        assert_eq!(t.lookup("anthropic", "claude-haiku-4-5-20251001").unwrap().model, "claude-haiku-4-5");
        assert_eq!(t.lookup("gemini", "models/gemini-2.5-flash").unwrap().model, "gemini-2.5-flash");
        // `gpt-4.1x` is a different model, not a snapshot of gpt-4.1.
        assert!(t.lookup("openai", "gpt-4.1x").is_none());
        assert!(t.lookup("xai", "gpt-4.1").is_none(), "prices are per provider");
    }

    #[test]
    fn cost_is_exact_and_rounded_up_once() {
        let p = Price {
            provider: "anthropic".into(),
            model: "m".into(),
            input: 3_000_000,
            cached_input: 300_000,
            cache_write: 3_750_000,
            output: 15_000_000,
        };
        let u = Usage {
            input_tokens: 1_000_000 + 2_000 + 10_000,
            output_tokens: 500,
            cached_input_tokens: 10_000,
            cache_write_tokens: 2_000,
        };
        // 1e6*3 + 1e4*0.3 + 2e3*3.75 + 500*15 dollars-per-million = 3 + 0.003 + 0.0075 + 0.0075
        assert_eq!(cost_micros(&p, &u), 3_018_000);
        // One token at $0.15/MTok is 0.15 micro-dollars: rounds up to 1.
        let cheap = Price { input: 150_000, ..p.clone() };
        let one = Usage { input_tokens: 1, ..Usage::default() };
        assert_eq!(cost_micros(&cheap, &one), 1);
        assert_eq!(format_usd(3_018_000), "$3.018000");
    }
}
