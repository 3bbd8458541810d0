//! [`LlmService`]: the provider chain with retries, breakers, fallback, structured output,
//! response cache, budgets and usage recording.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use beacon_cache::{Cache, CacheKey};
use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::breaker::Breaker;
use crate::config::{CostPolicy, LlmConfig, Reliability};
use crate::error::LlmError;
use crate::pricing::{PricingTable, cost_micros};
use crate::provider::{Provider, build_provider};
use crate::types::{ChatRequest, ChatResponse, ChatStream, ContentPart, Embeddings, Message, StreamEvent, Usage};
use crate::usage::{Outcome, UsageRecord, UsageStore};

/// Guild setting holding a per-guild chat model override for the primary provider.
pub const MODEL_SETTING: &str = "llm.model";

/// Who is calling, for usage records, budgets and the response cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// Guild the call is made for.
    pub guild_id: u64,
    /// Calling module (`ask`, `tickets`, …).
    pub module: String,
    /// Member who triggered the call (per-user limits).
    pub user_id: Option<u64>,
    /// Model override for the primary provider (the guild's `llm.model` setting).
    pub model: Option<String>,
    /// Knowledge-base version the prompt was built from. When set, answers are cached under the
    /// normalised request and this version; `None` disables the response cache for the call.
    pub kb_version: Option<String>,
}

impl CallContext {
    /// A context for `module` in `guild_id`.
    pub fn new(guild_id: u64, module: &str) -> CallContext {
        CallContext { guild_id, module: module.to_owned(), user_id: None, model: None, kb_version: None }
    }

    /// With the triggering member.
    pub fn user(mut self, user_id: u64) -> CallContext {
        self.user_id = Some(user_id);
        self
    }

    /// With a model override.
    pub fn model(mut self, model: Option<String>) -> CallContext {
        self.model = model;
        self
    }

    /// With response caching under `kb_version`.
    pub fn kb_version(mut self, kb_version: &str) -> CallContext {
        self.kb_version = Some(kb_version.to_owned());
        self
    }
}

/// A retrieved passage to ground an answer on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passage {
    /// Where it comes from (title or URL), shown as the citation.
    pub source: String,
    /// The passage text.
    pub text: String,
}

/// One provider call of [`LlmService::execute`]: a boxed `Send` future, so the service's own
/// futures stay `Send` (an `AsyncFn` closure's future is not known to be).
type Attempt<'f, T> = Pin<Box<dyn Future<Output = Result<T, LlmError>> + Send + 'f>>;

/// Told of every call as it is recorded (and of calls refused for budget, outcome
/// `budget_exhausted`, with no tokens): the binary feeds `/metrics` with it.
pub type CallObserver = Arc<dyn Fn(&ObservedCall<'_>) + Send + Sync>;

/// One call, as a [`CallObserver`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct ObservedCall<'a> {
    /// Provider name.
    pub provider: &'a str,
    /// Model id.
    pub model: &'a str,
    /// `ok`, `cache_hit`, `error`, `cancelled` or `budget_exhausted`.
    pub outcome: &'static str,
    /// Input tokens (cached ones included).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in micro-dollars.
    pub cost_micros: u64,
    /// Latency in milliseconds.
    pub latency_ms: u64,
}

/// The waiting function used between retries (replaceable for simulations and tests).
pub type SleepFn = Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Slot {
    provider: Arc<dyn Provider>,
    breaker: Breaker,
}

impl Slot {
    fn name(&self) -> &'static str {
        self.provider.kind().as_str()
    }
}

struct Inner {
    slots: Vec<Slot>,
    reliability: Reliability,
    cache_ttl: Duration,
    usage: Option<UsageStore>,
    cache: Option<Cache>,
    pricing: RwLock<PricingTable>,
    /// [`UsageStore::pricing_version`] of the table in `pricing`.
    pricing_version: std::sync::Mutex<Option<(i64, i64)>>,
    policy: CostPolicy,
    sleep: SleepFn,
    observer: Option<CallObserver>,
}

/// The LLM service every module uses. Cheap to clone.
#[derive(Clone)]
pub struct LlmService {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LlmService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let chain: Vec<String> =
            self.inner.slots.iter().map(|s| format!("{}:{}", s.name(), s.provider.model())).collect();
        f.debug_struct("LlmService").field("chain", &chain).finish_non_exhaustive()
    }
}

/// A successful attempt.
struct Success<T> {
    value: T,
    provider: &'static str,
    model: String,
    started: Instant,
    slot: usize,
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Collapses whitespace runs, so requests differing only in spacing share a cache entry.
fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn normalised_request(request: &ChatRequest) -> ChatRequest {
    let mut r = request.clone();
    r.system = r.system.as_deref().map(normalise);
    for m in &mut r.messages {
        for p in &mut m.content {
            if let ContentPart::Text { text } = p {
                *text = normalise(text);
            }
        }
    }
    r
}

/// Extracts the JSON value from a reply, tolerating a Markdown code fence around it.
fn parse_json_reply(text: &str) -> Result<Value, String> {
    let t = text.trim();
    let t = t
        .strip_prefix("```json")
        .or_else(|| t.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .unwrap_or(t);
    serde_json::from_str(t.trim()).map_err(|e| format!("not valid JSON ({e})"))
}

fn validate(validator: &jsonschema::Validator, text: &str) -> Result<Value, String> {
    let value = parse_json_reply(text)?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() { e.to_string() } else { format!("{at}: {e}") }
        })
        .collect();
    if errors.is_empty() { Ok(value) } else { Err(errors.join("; ")) }
}

impl LlmService {
    /// Builds the provider chain of `config` (an empty chain is a valid, disabled service).
    pub fn new(config: &LlmConfig) -> Result<LlmService, LlmError> {
        let providers = config
            .chain
            .iter()
            .map(|p| build_provider(p, config.reliability.timeout))
            .collect::<Result<Vec<_>, _>>()?;
        let mut service = LlmService::with_providers(providers, config.reliability.clone(), config.cache_ttl);
        service.inner_mut().policy = config.policy.clone();
        Ok(service)
    }

    /// A service over ready-made providers (for custom [`Provider`] implementations).
    pub fn with_providers(
        providers: Vec<Arc<dyn Provider>>,
        reliability: Reliability,
        cache_ttl: Duration,
    ) -> LlmService {
        let slots = providers
            .into_iter()
            .map(|provider| Slot {
                provider,
                breaker: Breaker::new(reliability.breaker_failures, reliability.breaker_cooldown),
            })
            .collect();
        LlmService {
            inner: Arc::new(Inner {
                slots,
                reliability,
                cache_ttl,
                usage: None,
                cache: None,
                pricing: RwLock::new(PricingTable::seeded()),
                pricing_version: std::sync::Mutex::new(None),
                policy: CostPolicy::default(),
                sleep: Arc::new(|d| Box::pin(tokio::time::sleep(d))),
                observer: None,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        // Builders run before the service is shared; if it was cloned, rebuild the shared part.
        if Arc::get_mut(&mut self.inner).is_none() {
            let old = &self.inner;
            let fresh = Inner {
                slots: old
                    .slots
                    .iter()
                    .map(|s| Slot {
                        provider: s.provider.clone(),
                        breaker: Breaker::new(old.reliability.breaker_failures, old.reliability.breaker_cooldown),
                    })
                    .collect(),
                reliability: old.reliability.clone(),
                cache_ttl: old.cache_ttl,
                usage: old.usage.clone(),
                cache: old.cache.clone(),
                pricing: RwLock::new(old.pricing()),
                pricing_version: std::sync::Mutex::new(*old.lock_version()),
                policy: old.policy.clone(),
                sleep: old.sleep.clone(),
                observer: old.observer.clone(),
            };
            self.inner = Arc::new(fresh);
        }
        Arc::get_mut(&mut self.inner).unwrap_or_else(|| unreachable!("just made unique"))
    }

    /// Records usage in `usage` and checks its budgets before calls; loads its pricing table.
    pub async fn with_usage_store(mut self, usage: UsageStore) -> Result<LlmService, LlmError> {
        let version = usage.pricing_version().await?;
        let pricing = usage.pricing().await?;
        let inner = self.inner_mut();
        inner.pricing = RwLock::new(pricing);
        inner.pricing_version = std::sync::Mutex::new(Some(version));
        inner.usage = Some(usage);
        Ok(self)
    }

    /// Replaces the operator's cost policy (models guilds may choose, default daily budget).
    pub fn with_policy(mut self, policy: CostPolicy) -> LlmService {
        self.inner_mut().policy = policy;
        self
    }

    /// The operator's cost policy.
    pub fn policy(&self) -> &CostPolicy {
        &self.inner.policy
    }

    /// Caches responses in `cache` (in-process or Redis) for calls with a `kb_version`.
    pub fn with_cache(mut self, cache: Cache) -> LlmService {
        self.inner_mut().cache = Some(cache);
        self
    }

    /// Tells `observer` of every call (metrics).
    pub fn with_observer(mut self, observer: CallObserver) -> LlmService {
        self.inner_mut().observer = Some(observer);
        self
    }

    /// Replaces the wait between retries (simulations, tests).
    pub fn with_sleep_fn(mut self, sleep: SleepFn) -> LlmService {
        self.inner_mut().sleep = sleep;
        self
    }

    /// Whether any provider is configured; when not, modules answer extractively.
    pub fn is_enabled(&self) -> bool {
        !self.inner.slots.is_empty()
    }

    /// The usage store, when configured.
    pub fn usage_store(&self) -> Option<&UsageStore> {
        self.inner.usage.as_ref()
    }

    /// Reloads the pricing table from the usage store when it changed since it was loaded
    /// (`beacon llm pricing set` in another process). Runs before every call: one small query
    /// beside the budget check, so a new price applies from the next call in every process.
    pub async fn reload_pricing(&self) -> Result<(), LlmError> {
        let Some(usage) = &self.inner.usage else {
            return Ok(());
        };
        let version = usage.pricing_version().await?;
        if *self.inner.lock_version() == Some(version) {
            return Ok(());
        }
        let table = usage.pricing().await?;
        *self.inner.pricing.write().unwrap_or_else(std::sync::PoisonError::into_inner) = table;
        *self.inner.lock_version() = Some(version);
        tracing::info!("LLM prices reloaded");
        Ok(())
    }

    /// The guild's model override (`llm.model` setting), if set to a model the operator lets
    /// guilds choose ([`CostPolicy::guild_models`]); a model no longer allowed is ignored.
    pub async fn guild_model(&self, guild_id: u64) -> Result<Option<String>, LlmError> {
        let Some(usage) = &self.inner.usage else {
            return Ok(None);
        };
        let value = usage.store().guild(guild_id).setting(MODEL_SETTING).await?;
        let Some(model) = value.as_ref().and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let primary = self.inner.slots.first().map(|s| s.provider.model());
        if self.inner.policy.choosable_models(primary).iter().any(|m| m == model) {
            Ok(Some(model.to_owned()))
        } else {
            tracing::warn!(guild_id, model, "llm.model is not among BEACON_LLM_GUILD_MODELS; using the default");
            Ok(None)
        }
    }

    /// One chat call through the chain. With a `response_schema`, the reply is validated (and
    /// repaired once) and returned in [`ChatResponse::json`].
    pub async fn chat(&self, ctx: &CallContext, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        if !self.is_enabled() {
            return Err(LlmError::NotConfigured);
        }
        let validator = match &request.response_schema {
            Some(schema) => Some(
                jsonschema::validator_for(schema)
                    .map_err(|e| LlmError::Config(format!("invalid response schema: {e}")))?,
            ),
            None => None,
        };
        let cache_key = self.cache_key(ctx, request);
        if let Some(hit) = self.cache_get(ctx, cache_key.as_ref()).await {
            return Ok(hit);
        }
        self.check_budget(ctx).await?;
        let mut response = self.chat_once(ctx, request).await?;
        if let Some(validator) = &validator {
            match validate(validator, &response.text) {
                Ok(value) => response.json = Some(value),
                Err(problem) => {
                    tracing::info!(module = %ctx.module, guild_id = ctx.guild_id, "structured output invalid, asking for a repair");
                    let mut repair = request.clone();
                    repair.messages.push(Message::assistant(response.text.clone()));
                    repair.messages.push(Message::user(format!(
                        "Your reply did not match the required JSON schema: {problem}. \
                         Reply again with only the corrected JSON."
                    )));
                    let mut second = self.chat_once(ctx, &repair).await?;
                    let value = validate(validator, &second.text).map_err(LlmError::InvalidStructuredOutput)?;
                    second.json = Some(value);
                    response = second;
                }
            }
        }
        self.cache_put(cache_key.as_ref(), &response).await;
        Ok(response)
    }

    async fn chat_once(&self, ctx: &CallContext, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let ok = self.execute(ctx, |p, model| Box::pin(async move { p.chat(&model, request).await })).await?;
        let mut response = ok.value;
        response.provider = ok.provider.to_owned();
        response.cost_micros = self.cost(ok.provider, &response.model, &response.usage);
        self.record(
            ctx,
            ok.provider,
            &response.model,
            response.usage,
            response.cost_micros,
            elapsed_ms(ok.started),
            Outcome::Ok,
            None,
        )
        .await;
        Ok(response)
    }

    /// A streamed chat call. Falls back while establishing the stream; once events flow, a
    /// failure ends the stream with the error. Usage is recorded when the stream completes.
    /// (Structured output is not validated on streams; use [`LlmService::chat`].)
    pub async fn chat_stream(&self, ctx: &CallContext, request: &ChatRequest) -> Result<ChatStream, LlmError> {
        if !self.is_enabled() {
            return Err(LlmError::NotConfigured);
        }
        self.check_budget(ctx).await?;
        let ok = self.execute(ctx, |p, model| Box::pin(async move { p.chat_stream(&model, request).await })).await?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<StreamEvent, LlmError>>(64);
        let service = self.clone();
        let ctx = ctx.clone();
        let mut upstream = ok.value;
        tokio::spawn(async move {
            let provider = ok.provider;
            while let Some(item) = upstream.next().await {
                let item = match item {
                    Ok(StreamEvent::Done(mut response)) => {
                        response.provider = provider.to_owned();
                        response.cost_micros = service.cost(provider, &response.model, &response.usage);
                        service
                            .record(
                                &ctx,
                                provider,
                                &response.model,
                                response.usage,
                                response.cost_micros,
                                elapsed_ms(ok.started),
                                Outcome::Ok,
                                None,
                            )
                            .await;
                        Ok(StreamEvent::Done(response))
                    }
                    Ok(other) => Ok(other),
                    Err(e) => {
                        if e.counts_as_provider_failure() {
                            service.inner.slots[ok.slot].breaker.on_failure();
                        }
                        service
                            .record(
                                &ctx,
                                provider,
                                &ok.model,
                                Usage::default(),
                                0,
                                elapsed_ms(ok.started),
                                Outcome::Error,
                                Some(e.kind()),
                            )
                            .await;
                        Err(e)
                    }
                };
                if tx.send(item).await.is_err() {
                    service
                        .record(
                            &ctx,
                            provider,
                            &ok.model,
                            Usage::default(),
                            0,
                            elapsed_ms(ok.started),
                            Outcome::Cancelled,
                            None,
                        )
                        .await;
                    return;
                }
            }
        });
        Ok(Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))))
    }

    /// Embeddings through the chain (providers without embeddings are skipped).
    pub async fn embed(&self, ctx: &CallContext, inputs: &[String]) -> Result<Embeddings, LlmError> {
        if !self.is_enabled() {
            return Err(LlmError::NotConfigured);
        }
        self.check_budget(ctx).await?;
        let ok = self.execute(ctx, |p, _model| Box::pin(async move { p.embed(inputs).await })).await?;
        let usage = Usage { input_tokens: ok.value.input_tokens, ..Usage::default() };
        let cost = self.cost(ok.provider, &ok.value.model, &usage);
        self.record(ctx, ok.provider, &ok.value.model, usage, cost, elapsed_ms(ok.started), Outcome::Ok, None).await;
        Ok(ok.value)
    }

    fn cost(&self, provider: &str, model: &str, usage: &Usage) -> u64 {
        let table = self.inner.pricing.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        match table.lookup(provider, model) {
            Some(price) => cost_micros(price, usage),
            None => {
                if usage.total() > 0 && provider != "openai-compatible" {
                    tracing::warn!(provider, model, "no price for model; cost recorded as 0");
                }
                0
            }
        }
    }

    /// The pricing table in use.
    pub fn pricing_table(&self) -> PricingTable {
        self.inner.pricing()
    }

    /// Refuses the call when the guild or member is over budget; picks up new prices first.
    async fn check_budget(&self, ctx: &CallContext) -> Result<(), LlmError> {
        let Some(usage) = &self.inner.usage else {
            return Ok(());
        };
        // A price table that cannot be re-read keeps the one loaded before: log, do not fail.
        if let Err(e) = self.reload_pricing().await {
            tracing::warn!(error = %e, "could not check LLM prices for changes");
        }
        let checked = usage.check_budget(ctx.guild_id, ctx.user_id, beacon_store::now_ms(), &self.inner.policy).await;
        if let (Err(LlmError::BudgetExceeded(_)), Some(observer), Some(slot)) =
            (&checked, &self.inner.observer, self.inner.slots.first())
        {
            let model = ctx.model.as_deref().unwrap_or(slot.provider.model());
            observer(&ObservedCall {
                provider: slot.name(),
                model,
                outcome: "budget_exhausted",
                input_tokens: 0,
                output_tokens: 0,
                cost_micros: 0,
                latency_ms: 0,
            });
        }
        checked
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        ctx: &CallContext,
        provider: &str,
        model: &str,
        usage: Usage,
        cost: u64,
        latency_ms: u64,
        outcome: Outcome,
        error_kind: Option<&str>,
    ) {
        tracing::debug!(
            guild_id = ctx.guild_id, module = %ctx.module, provider, model,
            input = usage.input_tokens, output = usage.output_tokens, cached = usage.cached_input_tokens,
            cost_micros = cost, latency_ms, outcome = outcome.as_str(), "llm call"
        );
        if let Some(observer) = &self.inner.observer {
            observer(&ObservedCall {
                provider,
                model,
                outcome: outcome.as_str(),
                input_tokens: usage.input_tokens,
                output_tokens: usage.output_tokens,
                cost_micros: cost,
                latency_ms,
            });
        }
        let Some(store) = &self.inner.usage else {
            return;
        };
        let record = UsageRecord {
            guild_id: ctx.guild_id,
            module: ctx.module.clone(),
            user_id: ctx.user_id,
            provider: provider.to_owned(),
            model: model.to_owned(),
            usage,
            cost_micros: cost,
            latency_ms,
            outcome,
            error_kind: error_kind.map(str::to_owned),
            at: beacon_store::now_ms(),
        };
        // Accounting must not turn a good answer into a failure; the error is logged.
        if let Err(e) = store.record(&record).await {
            tracing::error!(error = %e, "could not record LLM usage");
        }
    }

    fn cache_key(&self, ctx: &CallContext, request: &ChatRequest) -> Option<CacheKey> {
        let kb = ctx.kb_version.as_deref()?;
        self.inner.cache.as_ref()?;
        let primary = self.inner.slots.first()?;
        let model = ctx.model.as_deref().unwrap_or(primary.provider.model());
        let body = serde_json::to_vec(&normalised_request(request)).ok()?;
        let mut hasher = Sha256::new();
        hasher.update(primary.name().as_bytes());
        hasher.update([0]);
        hasher.update(model.as_bytes());
        hasher.update([0]);
        hasher.update(kb.as_bytes());
        hasher.update([0]);
        hasher.update(&body);
        let digest = hex::encode(hasher.finalize());
        Some(CacheKey::guild(ctx.guild_id, "llm", &format!("resp:{digest}")))
    }

    async fn cache_get(&self, ctx: &CallContext, key: Option<&CacheKey>) -> Option<ChatResponse> {
        let (key, cache) = (key?, self.inner.cache.as_ref()?);
        let bytes = match cache.get(key).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(error = %e, "response cache read failed");
                return None;
            }
        };
        let mut response: ChatResponse = serde_json::from_slice(&bytes).ok()?;
        response.from_cache = true;
        response.cost_micros = 0;
        self.record(ctx, &response.provider, &response.model, Usage::default(), 0, 0, Outcome::CacheHit, None).await;
        Some(response)
    }

    async fn cache_put(&self, key: Option<&CacheKey>, response: &ChatResponse) {
        let (Some(key), Some(cache)) = (key, self.inner.cache.as_ref()) else {
            return;
        };
        if !response.tool_calls.is_empty() {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(response)
            && let Err(e) = cache.set(key, &bytes, self.inner.cache_ttl).await
        {
            tracing::warn!(error = %e, "response cache write failed");
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let r = &self.inner.reliability;
        let exp = r.backoff_base.saturating_mul(2u32.saturating_pow(attempt));
        let capped = exp.min(r.backoff_max);
        // Jitter in [d/2, d] spreads retries of concurrent callers.
        capped.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    /// Runs `op` on each provider of the chain in turn, retrying retryable failures with backoff
    /// (honouring Retry-After up to the cap) while the provider's breaker allows.
    async fn execute<'f, T>(
        &self,
        ctx: &CallContext,
        op: impl Fn(Arc<dyn Provider>, String) -> Attempt<'f, T>,
    ) -> Result<Success<T>, LlmError> {
        let reliability = &self.inner.reliability;
        let mut tried: Vec<String> = Vec::new();
        let mut last: Option<LlmError> = None;
        for (i, slot) in self.inner.slots.iter().enumerate() {
            let model = match (i, &ctx.model) {
                (0, Some(m)) => m.clone(),
                _ => slot.provider.model().to_owned(),
            };
            tried.push(slot.name().to_owned());
            if !slot.breaker.try_acquire() {
                last = Some(LlmError::CircuitOpen { provider: slot.name().to_owned() });
                continue;
            }
            let mut attempt = 0u32;
            loop {
                let started = Instant::now();
                match op(slot.provider.clone(), model.clone()).await {
                    Ok(value) => {
                        slot.breaker.on_success();
                        return Ok(Success { value, provider: slot.name(), model, started, slot: i });
                    }
                    Err(e) => {
                        self.record(
                            ctx,
                            slot.name(),
                            &model,
                            Usage::default(),
                            0,
                            elapsed_ms(started),
                            Outcome::Error,
                            Some(e.kind()),
                        )
                        .await;
                        if e.counts_as_provider_failure() {
                            slot.breaker.on_failure();
                        } else {
                            slot.breaker.on_neutral();
                        }
                        tracing::warn!(provider = slot.name(), %model, attempt, error = %e, "llm attempt failed");
                        if !e.should_fall_back() {
                            return Err(e);
                        }
                        let wait = match &e {
                            _ if !e.is_retryable() || attempt >= reliability.max_retries => None,
                            LlmError::RateLimited { retry_after: Some(d), .. } => {
                                (*d <= reliability.retry_after_max).then_some(*d)
                            }
                            _ => Some(self.backoff(attempt)),
                        };
                        last = Some(e);
                        let Some(wait) = wait else { break };
                        (self.inner.sleep)(wait).await;
                        attempt += 1;
                        if !slot.breaker.try_acquire() {
                            break;
                        }
                    }
                }
            }
        }
        let last = last.unwrap_or(LlmError::NotConfigured);
        if tried.len() <= 1 { Err(last) } else { Err(LlmError::AllProvidersFailed { tried, last: Box::new(last) }) }
    }
}

impl Inner {
    fn pricing(&self) -> PricingTable {
        self.pricing.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn lock_version(&self) -> std::sync::MutexGuard<'_, Option<(i64, i64)>> {
        self.pricing_version.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_replies_may_be_fenced() {
        assert_eq!(parse_json_reply("```json\n{\"a\":1}\n```").unwrap(), serde_json::json!({"a": 1}));
        assert!(parse_json_reply("sure! {\"a\":1}").is_err());
    }

    #[test]
    fn normalisation_ignores_spacing_only() {
        let a = ChatRequest::new(Some("sys  prompt"), " hello\n world ");
        let b = ChatRequest::new(Some("sys prompt"), "hello world");
        let c = ChatRequest::new(Some("sys prompt"), "hello there");
        assert_eq!(normalised_request(&a), normalised_request(&b));
        assert_ne!(normalised_request(&a), normalised_request(&c));
    }
}
