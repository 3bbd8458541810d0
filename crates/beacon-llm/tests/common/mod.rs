//! Shared setup of the conformance suite: one fake server, a service over a chain of providers
//! pointed at it, an in-memory store, and a sleeper that records waits instead of sleeping.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use beacon_config::Secret;
use beacon_llm::{LlmService, Provider, ProviderConfig, ProviderKind, Reliability, Usage, UsageStore, build_provider};
use beacon_testkit::llm::{Dialect, FakeLlm, FakeRequest, FakeUsage};

pub const GUILD: u64 = 81384788765712384;

/// The key configured for `kind` (distinctive, so a leak is easy to find).
pub fn key(kind: ProviderKind) -> String {
    format!("sk-{}-Zq9SECRETkey7731", kind.as_str())
}

/// The wire dialect `kind` speaks.
pub fn dialect(kind: ProviderKind) -> Dialect {
    match kind {
        ProviderKind::Anthropic => Dialect::Anthropic,
        ProviderKind::Gemini => Dialect::Gemini,
        _ => Dialect::OpenAi,
    }
}

/// A provider of another dialect, for fallback tests.
pub fn other(kind: ProviderKind) -> ProviderKind {
    match dialect(kind) {
        Dialect::OpenAi => ProviderKind::Gemini,
        Dialect::Anthropic => ProviderKind::OpenAi,
        Dialect::Gemini => ProviderKind::Anthropic,
    }
}

pub fn provider_config(kind: ProviderKind, fake: &FakeLlm) -> ProviderConfig {
    let base_url = match dialect(kind) {
        Dialect::OpenAi => fake.openai_base_url(),
        _ => fake.base_url(),
    };
    ProviderConfig {
        kind,
        model: kind.default_model().unwrap_or("local-model").to_owned(),
        api_key: Some(Secret::new(key(kind))),
        base_url,
        embedding_model: match kind {
            ProviderKind::OpenAiCompatible => Some("nomic-embed-text".to_owned()),
            k => k.default_embedding_model().map(str::to_owned),
        },
    }
}

/// Fast retries for tests; waits go through the recording sleeper anyway.
pub fn reliability() -> Reliability {
    Reliability {
        timeout: Duration::from_secs(5),
        max_retries: 2,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        retry_after_max: Duration::from_secs(30),
        breaker_failures: 3,
        breaker_cooldown: Duration::from_secs(600),
    }
}

pub struct Harness {
    pub fake: FakeLlm,
    pub service: LlmService,
    pub usage: UsageStore,
    pub waits: Arc<Mutex<Vec<Duration>>>,
}

impl Harness {
    pub async fn new(chain: &[ProviderKind]) -> Harness {
        Harness::with(chain, reliability()).await
    }

    pub async fn with(chain: &[ProviderKind], reliability: Reliability) -> Harness {
        let fake = FakeLlm::start().await.expect("fake starts");
        Harness::on(fake, chain, reliability).await
    }

    pub async fn on(fake: FakeLlm, chain: &[ProviderKind], reliability: Reliability) -> Harness {
        let providers: Vec<Arc<dyn Provider>> = chain
            .iter()
            .map(|k| build_provider(&provider_config(*k, &fake), reliability.timeout).expect("provider"))
            .collect();
        let store = beacon_store::Store::connect("sqlite::memory:").await.expect("store");
        store.migrate().await.expect("migrate");
        let usage = UsageStore::open(store).await.expect("usage store");
        let waits: Arc<Mutex<Vec<Duration>>> = Arc::default();
        let recorded = waits.clone();
        let service = LlmService::with_providers(providers, reliability, Duration::from_secs(60))
            .with_usage_store(usage.clone())
            .await
            .expect("usage")
            .with_cache(beacon_cache::Cache::memory())
            .with_sleep_fn(Arc::new(move |d| {
                recorded.lock().expect("waits").push(d);
                Box::pin(async {})
            }));
        Harness { fake, service, usage, waits }
    }

    pub fn requests(&self, dialect: Dialect) -> Vec<FakeRequest> {
        self.fake.requests().into_iter().filter(|r| r.dialect == dialect).collect()
    }

    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().expect("waits").clone()
    }
}

/// The usage `kind` reports for a scripted `fake` usage: OpenAI-style APIs and Gemini do not
/// report cache writes.
pub fn expected_usage(kind: ProviderKind, fake: FakeUsage) -> Usage {
    Usage {
        input_tokens: fake.input,
        output_tokens: fake.output,
        cached_input_tokens: fake.cached_input,
        cache_write_tokens: if kind == ProviderKind::Anthropic { fake.cache_write } else { 0 },
    }
}

/// Asserts the request carried the key only in the provider's own auth header.
pub fn assert_auth(kind: ProviderKind, request: &FakeRequest) {
    let key = key(kind);
    let (header, value) = match dialect(kind) {
        Dialect::OpenAi => ("authorization", format!("Bearer {key}")),
        Dialect::Anthropic => ("x-api-key", key.clone()),
        Dialect::Gemini => ("x-goog-api-key", key.clone()),
    };
    assert_eq!(request.header(header), Some(value.as_str()), "{kind}: auth header");
    if kind == ProviderKind::Anthropic {
        assert_eq!(request.header("anthropic-version"), Some("2023-06-01"));
    }
    for (name, v) in &request.headers {
        if name != header {
            assert!(!v.contains(&key), "{kind}: key leaked into header {name}");
        }
    }
    assert!(!request.query.as_deref().unwrap_or_default().contains(&key), "{kind}: key in the query string");
    assert!(!request.body.to_string().contains(&key), "{kind}: key in the body");
}
