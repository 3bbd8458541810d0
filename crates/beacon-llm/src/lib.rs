//! Beacon's LLM service: one provider-neutral API over OpenAI, Anthropic, Google Gemini, xAI and
//! any OpenAI-compatible server (Ollama, vLLM, llama.cpp), each spoken over its real HTTP API
//! with thin typed clients on reqwest.
//!
//! - [`LlmService::chat`]: multi-turn chat with a system prompt, tools, and structured output
//!   validated against a JSON schema (one repair retry); [`LlmService::chat_stream`] streams
//!   [`StreamEvent`]s; [`LlmService::embed`]. The grounded `/ask` prompt (numbered [`Passage`]s,
//!   checked citations) lives in beacon-support.
//! - Reliability: per-request timeouts, retries with jittered exponential backoff that honour
//!   Retry-After (capped), a circuit breaker per provider, then the fallback chain, then a typed
//!   [`LlmError`] ([`LlmError::user_message`] gives the member-facing sentence). Keys travel only
//!   in each provider's auth header and are scrubbed from every error message.
//! - Accounting: every attempt is recorded ([`UsageStore`]) with guild, module, user, provider,
//!   model, tokens in/out/cached/cache-write, cost in integer micro-dollars ([`pricing`]),
//!   latency and outcome; summaries by guild, module, model and day; per-guild daily budgets and
//!   per-member limits are checked before each call.
//! - A response cache ([`beacon_cache::Cache`], in-process or Redis) keyed by the normalised
//!   request and the knowledge-base version.
//!
//! # Configuration
//!
//! beacon-config reads these into [`beacon_config::LlmSettings`]; [`LlmConfig::from_settings`]
//! turns them into the provider chain.
//!
//! | variable | meaning |
//! | --- | --- |
//! | `BEACON_LLM_PROVIDER` | `none` (default: no LLM, extractive answers), `openai`, `anthropic`, `gemini`, `xai`, `openai-compatible` |
//! | `BEACON_LLM_MODEL` | chat model (defaults: `gpt-4.1-mini`, `claude-haiku-4-5`, `gemini-2.5-flash`, `grok-3-mini`; required for `openai-compatible`) |
//! | `BEACON_LLM_API_KEY` | key (optional for `openai-compatible`) |
//! | `BEACON_LLM_BASE_URL` | API root as the official SDKs take it: `…/v1` for OpenAI-style APIs, `https://api.anthropic.com`, `https://generativelanguage.googleapis.com`; required for `openai-compatible` |
//! | `BEACON_LLM_EMBEDDING_MODEL` | embedding model (defaults: `text-embedding-3-small`, `gemini-embedding-001`) |
//! | `BEACON_LLM_FALLBACKS` | comma-separated `provider[:model]` tried in order after the primary, e.g. `anthropic:claude-sonnet-4-5,gemini,openai-compatible:llama3.1:8b` (only the first `:` separates) |
//! | `BEACON_LLM_FALLBACK_<N>_API_KEY`, `_BASE_URL`, `_EMBEDDING_MODEL` | settings of the N-th fallback (1-based) |
//! | `BEACON_LLM_TIMEOUT` | per-request timeout (`60s`); for streams, to the first byte and between chunks |
//! | `BEACON_LLM_MAX_RETRIES` | retries per provider (`2`) |
//! | `BEACON_LLM_RETRY_AFTER_MAX` | longest Retry-After honoured (`30s`); longer skips to the next provider |
//! | `BEACON_LLM_BREAKER_FAILURES`, `BEACON_LLM_BREAKER_COOLDOWN` | consecutive failures that open a provider's breaker (`5`), and for how long (`30s`) |
//! | `BEACON_LLM_CACHE_TTL` | response cache lifetime (`1h`) |
//!
//! A per-guild model override for the primary provider is the guild setting `llm.model`
//! ([`MODEL_SETTING`], read with [`LlmService::guild_model`] and passed in [`CallContext`]).
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use beacon_llm::{CallContext, ChatRequest, LlmConfig, LlmService, UsageStore};
//!
//! let settings = beacon_config::Config::load(None)?.llm;
//! let config = LlmConfig::from_settings(&settings)?;
//! let store = beacon_store::Store::connect("sqlite::memory:").await?;
//! store.migrate().await?;
//! let llm = LlmService::new(&config)?
//!     .with_usage_store(UsageStore::open(store).await?)
//!     .await?
//!     .with_cache(beacon_cache::Cache::memory());
//!
//! let ctx = CallContext::new(81384788765712384, "ask").user(80351110224678912).kb_version("kb-42");
//! match llm.chat(&ctx, &ChatRequest::new(Some("Be brief."), "How do I reset my password?")).await {
//!     Ok(reply) => println!("{} ({} µ$)", reply.text, reply.cost_micros),
//!     Err(e) => println!("{}", e.user_message()), // then answer extractively
//! }
//! # Ok(())
//! # }
//! ```

mod breaker;
mod config;
mod error;
pub mod http;
pub mod pricing;
mod provider;
pub mod providers;
mod service;
mod types;
pub mod usage;

pub use breaker::{Breaker, BreakerState};
pub use config::{CostPolicy, LlmConfig, ProviderConfig, ProviderKind, Reliability};
pub use error::LlmError;
pub use pricing::{Price, PricingTable};
pub use provider::{Provider, build_provider};
pub use service::{CallContext, CallObserver, LlmService, MODEL_SETTING, ObservedCall, Passage, SleepFn};
pub use types::{
    CacheHint, ChatRequest, ChatResponse, ChatStream, ContentPart, DEFAULT_MAX_TOKENS, Embeddings, FinishReason,
    Message, Role, StreamEvent, Tool, ToolCall, Usage,
};
pub use usage::{Budget, GroupBy, Outcome, ProviderHealth, SummaryRow, UsageRecord, UsageStore};
