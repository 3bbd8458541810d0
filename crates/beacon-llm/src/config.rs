//! The provider chain from the typed `BEACON_LLM_*` settings of beacon-config (see the crate docs
//! for the full list).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use beacon_config::{LlmSettings, Secret};

use crate::error::LlmError;

/// Which API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderKind {
    /// OpenAI chat completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini generateContent.
    Gemini,
    /// xAI (OpenAI-compatible API at `https://api.x.ai/v1`).
    Xai,
    /// Any OpenAI-compatible server (Ollama, vLLM, llama.cpp).
    OpenAiCompatible,
}

impl ProviderKind {
    /// Every provider kind.
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Xai,
        ProviderKind::OpenAiCompatible,
    ];

    /// The name used in `BEACON_LLM_PROVIDER`, usage records and pricing.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Xai => "xai",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    /// API root as the provider's official SDK takes it.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::Xai => Some("https://api.x.ai/v1"),
            ProviderKind::OpenAiCompatible => None,
        }
    }

    /// Chat model used when none is configured.
    pub fn default_model(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("gpt-4.1-mini"),
            ProviderKind::Anthropic => Some("claude-haiku-4-5"),
            ProviderKind::Gemini => Some("gemini-2.5-flash"),
            ProviderKind::Xai => Some("grok-3-mini"),
            ProviderKind::OpenAiCompatible => None,
        }
    }

    /// Embedding model used when none is configured (`None`: no embeddings by default).
    pub fn default_embedding_model(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("text-embedding-3-small"),
            ProviderKind::Gemini => Some("gemini-embedding-001"),
            _ => None,
        }
    }

    /// Whether an API key is mandatory.
    pub fn needs_key(self) -> bool {
        self != ProviderKind::OpenAiCompatible
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = LlmError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(s.trim())).ok_or_else(|| {
            LlmError::Config(format!(
                "unknown provider {s:?} (expected none, openai, anthropic, gemini, xai or openai-compatible)"
            ))
        })
    }
}

/// One provider of the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderConfig {
    /// API dialect and defaults.
    pub kind: ProviderKind,
    /// Chat model.
    pub model: String,
    /// API key (sent only in the provider's own auth header).
    pub api_key: Option<Secret>,
    /// API root, without a trailing `/`.
    pub base_url: String,
    /// Embedding model, if this provider should serve embeddings.
    pub embedding_model: Option<String>,
}

impl ProviderConfig {
    /// A provider with its default base URL and model, for code and tests that build configs
    /// by hand. Fails for `openai-compatible`, which has no defaults.
    pub fn new(kind: ProviderKind, api_key: Option<&str>) -> Result<ProviderConfig, LlmError> {
        build_provider(kind, None, api_key.map(|k| Secret::new(k.to_owned())), None, None, "provider")
    }

    /// Same provider with another base URL.
    pub fn with_base_url(mut self, base_url: &str) -> ProviderConfig {
        self.base_url = base_url.trim_end_matches('/').to_owned();
        self
    }

    /// Same provider with another model.
    pub fn with_model(mut self, model: &str) -> ProviderConfig {
        self.model = model.to_owned();
        self
    }
}

/// Retry, timeout and breaker tuning.
#[derive(Debug, Clone, PartialEq)]
pub struct Reliability {
    /// Per-request timeout (whole response for plain calls; first byte for streams).
    pub timeout: Duration,
    /// Retries of one provider after the first attempt.
    pub max_retries: u32,
    /// First backoff delay; doubles on each retry (with jitter).
    pub backoff_base: Duration,
    /// Longest backoff delay.
    pub backoff_max: Duration,
    /// Longest Retry-After honoured; a longer one skips to the next provider instead.
    pub retry_after_max: Duration,
    /// Consecutive failures that open a provider's circuit.
    pub breaker_failures: u32,
    /// How long an open circuit stays open before one trial call.
    pub breaker_cooldown: Duration,
}

impl Default for Reliability {
    fn default() -> Self {
        Reliability {
            timeout: Duration::from_secs(60),
            max_retries: 2,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            retry_after_max: Duration::from_secs(30),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// What the operator lets guilds spend and choose (`BEACON_LLM_GUILD_*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CostPolicy {
    /// Chat models a guild may choose in `llm.model`, besides the primary provider's own model.
    pub guild_models: Vec<String>,
    /// A guild's daily spend in micro-dollars unless the operator set its budget
    /// (`beacon llm budget set`); `None` for no limit.
    pub guild_daily_cost_micros: Option<u64>,
}

impl CostPolicy {
    /// The models a guild may choose: the primary's model (`default_model`) first, then the
    /// operator's list, without repeats.
    pub fn choosable_models(&self, default_model: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in default_model.into_iter().chain(self.guild_models.iter().map(String::as_str)) {
            if !out.iter().any(|o| o == m) {
                out.push(m.to_owned());
            }
        }
        out
    }
}

/// The LLM configuration: the provider chain and tuning.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// Primary provider, then fallbacks in order. Empty means no LLM (`BEACON_LLM_PROVIDER=none`).
    pub chain: Vec<ProviderConfig>,
    /// Retries, timeouts, breaker.
    pub reliability: Reliability,
    /// How long cached responses live.
    pub cache_ttl: Duration,
    /// The models guilds may choose and their default daily budget.
    pub policy: CostPolicy,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            chain: Vec::new(),
            reliability: Reliability::default(),
            cache_ttl: Duration::from_secs(3600),
            policy: CostPolicy::default(),
        }
    }
}

fn build_provider(
    kind: ProviderKind,
    model: Option<&str>,
    api_key: Option<Secret>,
    base_url: Option<&str>,
    embedding_model: Option<&str>,
    what: &str,
) -> Result<ProviderConfig, LlmError> {
    let model =
        model.or(kind.default_model()).ok_or_else(|| LlmError::Config(format!("{what}: {kind} needs a model")))?;
    let base_url = base_url
        .or(kind.default_base_url())
        .ok_or_else(|| LlmError::Config(format!("{what}: {kind} needs a base URL (…/v1)")))?;
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(LlmError::Config(format!("{what}: base URL {base_url:?} must start with http:// or https://")));
    }
    if kind.needs_key() && api_key.is_none() {
        return Err(LlmError::Config(format!("{what}: {kind} needs an API key")));
    }
    Ok(ProviderConfig {
        kind,
        model: model.to_owned(),
        api_key,
        base_url: base_url.trim_end_matches('/').to_owned(),
        embedding_model: embedding_model.or(kind.default_embedding_model()).map(str::to_owned),
    })
}

impl LlmConfig {
    /// The provider chain and tuning of the typed `BEACON_LLM_*` settings: checks provider
    /// names and fills in each provider's default model, base URL and embedding model.
    pub fn from_settings(settings: &LlmSettings) -> Result<LlmConfig, LlmError> {
        let mut config = LlmConfig {
            reliability: Reliability {
                timeout: settings.timeout,
                max_retries: settings.max_retries,
                retry_after_max: settings.retry_after_max,
                breaker_failures: settings.breaker_failures.max(1),
                breaker_cooldown: settings.breaker_cooldown,
                ..Reliability::default()
            },
            cache_ttl: settings.cache_ttl,
            chain: Vec::new(),
            policy: CostPolicy {
                guild_models: settings.guild_models.clone(),
                guild_daily_cost_micros: settings.guild_daily_budget_micros,
            },
        };
        if !settings.is_enabled() {
            return Ok(config);
        }
        let kind: ProviderKind = settings.provider().parse()?;
        config.chain.push(build_provider(
            kind,
            settings.model.as_deref(),
            settings.api_key.clone(),
            settings.base_url.as_deref(),
            settings.embedding_model.as_deref(),
            "BEACON_LLM_PROVIDER",
        )?);
        for (i, fallback) in settings.fallbacks.iter().enumerate() {
            let entry = match &fallback.model {
                Some(model) => format!("{}:{model}", fallback.provider),
                None => fallback.provider.clone(),
            };
            let kind: ProviderKind = fallback.provider.parse()?;
            config.chain.push(build_provider(
                kind,
                fallback.model.as_deref(),
                fallback.api_key.clone(),
                fallback.base_url.as_deref(),
                fallback.embedding_model.as_deref(),
                &format!("BEACON_LLM_FALLBACKS entry {} ({entry})", i + 1),
            )?);
        }
        Ok(config)
    }

    /// Whether any provider is configured.
    pub fn is_enabled(&self) -> bool {
        !self.chain.is_empty()
    }

    /// The chat models a guild may put in `llm.model` (none without a provider).
    pub fn choosable_models(&self) -> Vec<String> {
        match self.chain.first() {
            Some(primary) => self.policy.choosable_models(Some(&primary.model)),
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use beacon_config::Source;

    fn from_pairs(pairs: &[(&str, &str)]) -> Result<LlmConfig, LlmError> {
        let settings = LlmSettings::from_source(&Source::from_pairs(pairs.iter().copied())).unwrap();
        LlmConfig::from_settings(&settings)
    }

    #[test]
    fn none_is_default() {
        let c = from_pairs(&[]).unwrap();
        assert!(!c.is_enabled());
        let c = from_pairs(&[("BEACON_LLM_PROVIDER", "none")]).unwrap();
        assert!(c.chain.is_empty());
    }

    #[test]
    fn primary_and_fallbacks() {
        let c = from_pairs(&[
            ("BEACON_LLM_PROVIDER", "openai"),
            ("BEACON_LLM_API_KEY", "sk-primary"),
            ("BEACON_LLM_MODEL", "gpt-4.1-mini"),
            ("BEACON_LLM_FALLBACKS", "anthropic:claude-sonnet-4-5, gemini ,openai-compatible:llama3.1:8b"),
            ("BEACON_LLM_FALLBACK_1_API_KEY", "sk-ant"),
            ("BEACON_LLM_FALLBACK_2_API_KEY", "g-key"),
            ("BEACON_LLM_FALLBACK_2_BASE_URL", "http://127.0.0.1:9/"),
            ("BEACON_LLM_FALLBACK_3_BASE_URL", "http://localhost:11434/v1"),
            ("BEACON_LLM_TIMEOUT", "15s"),
        ])
        .unwrap();
        assert_eq!(c.reliability.timeout, Duration::from_secs(15));
        let kinds: Vec<_> = c.chain.iter().map(|p| (p.kind, p.model.as_str())).collect();
        assert_eq!(
            kinds,
            vec![
                (ProviderKind::OpenAi, "gpt-4.1-mini"),
                (ProviderKind::Anthropic, "claude-sonnet-4-5"),
                (ProviderKind::Gemini, "gemini-2.5-flash"),
                (ProviderKind::OpenAiCompatible, "llama3.1:8b"),
            ]
        );
        assert_eq!(c.chain[0].base_url, "https://api.openai.com/v1");
        assert_eq!(c.chain[1].api_key.as_ref().map(Secret::expose), Some("sk-ant"));
        assert_eq!(c.chain[2].base_url, "http://127.0.0.1:9");
        assert!(c.chain[3].api_key.is_none());
        // Keys never show in Debug output.
        let debug = format!("{c:?}");
        assert!(!debug.contains("sk-primary") && !debug.contains("sk-ant"), "{debug}");
    }

    #[test]
    fn guilds_choose_among_the_primary_model_and_the_operators_list() {
        let c = from_pairs(&[
            ("BEACON_LLM_PROVIDER", "openai"),
            ("BEACON_LLM_API_KEY", "k"),
            ("BEACON_LLM_MODEL", "gpt-4.1-mini"),
            ("BEACON_LLM_GUILD_MODELS", "gpt-4.1-nano,gpt-4.1-mini"),
            ("BEACON_LLM_GUILD_DAILY_BUDGET", "0.25"),
        ])
        .unwrap();
        assert_eq!(c.choosable_models(), ["gpt-4.1-mini", "gpt-4.1-nano"]);
        assert_eq!(c.policy.guild_daily_cost_micros, Some(250_000));
        let none = from_pairs(&[("BEACON_LLM_GUILD_MODELS", "gpt-5")]).unwrap();
        assert!(none.choosable_models().is_empty(), "no provider, nothing to choose");
    }

    #[test]
    fn errors_name_the_variable() {
        let e = from_pairs(&[("BEACON_LLM_PROVIDER", "anthropic")]).unwrap_err();
        assert!(e.to_string().contains("needs an API key"), "{e}");
        let e = from_pairs(&[("BEACON_LLM_PROVIDER", "bard")]).unwrap_err();
        assert!(e.to_string().contains("unknown provider"), "{e}");
        let e = from_pairs(&[("BEACON_LLM_PROVIDER", "openai-compatible")]).unwrap_err();
        assert!(e.to_string().contains("needs a model"), "{e}");
        let e = from_pairs(&[
            ("BEACON_LLM_PROVIDER", "openai"),
            ("BEACON_LLM_API_KEY", "k"),
            ("BEACON_LLM_FALLBACKS", "xai"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("entry 1 (xai)"), "{e}");
    }
}
