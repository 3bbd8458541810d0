//! The response cache on Redis: two services (two workers) sharing one Redis — the second is
//! answered from what the first stored, without calling the provider; a new knowledge-base
//! version misses.
//!
//! Runs when `BEACON_TEST_REDIS_URL` is set; with `BEACON_TEST_REQUIRE_SERVICES=1` a missing URL
//! fails the test instead of skipping it. Each run uses its own random guild id and knowledge-base
//! versions, so runs can share one Redis.

mod common;

use std::sync::Arc;
use std::time::Duration;

use beacon_cache::Cache;
use beacon_llm::{CallContext, ChatRequest, LlmService, Provider, ProviderKind, build_provider};
use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply};
use common::{provider_config, reliability};

async fn redis_cache() -> Option<Cache> {
    let url = beacon_testkit::services::redis_url()?;
    Some(Cache::redis(&url).await.expect("BEACON_TEST_REDIS_URL is set but Redis is unreachable"))
}

/// A service (one worker) over the fake's OpenAI endpoint, caching in `cache`.
fn worker(fake: &FakeLlm, cache: Cache) -> LlmService {
    let r = reliability();
    let provider: Arc<dyn Provider> =
        build_provider(&provider_config(ProviderKind::OpenAi, fake), r.timeout).expect("provider");
    LlmService::with_providers(vec![provider], r, Duration::from_secs(60)).with_cache(cache)
}

#[tokio::test]
async fn two_services_share_answers_through_redis_and_a_new_kb_version_misses() {
    // Each worker opens its own connection, as two processes would.
    let (Some(cache_a), Some(cache_b)) = (redis_cache().await, redis_cache().await) else { return };
    assert_eq!((cache_a.kind(), cache_b.kind()), ("redis", "redis"));
    let fake = FakeLlm::start().await.expect("fake starts");
    let (a, b) = (worker(&fake, cache_a), worker(&fake, cache_b));
    let guild = fastrand::u64(1 << 40..1 << 60);
    let run = format!("{:016x}", fastrand::u64(..));
    let v1 = format!("kb-{run}-1");
    let v2 = format!("kb-{run}-2");
    let question = ChatRequest::new(Some("Answer from the passages."), "How do I reset my password?");

    fake.push(Dialect::OpenAi, FakeReply::text("Click Forgot password [1]."));
    let first = a.chat(&CallContext::new(guild, "support").kb_version(&v1), &question).await.expect("first");
    assert!(!first.from_cache);
    assert_eq!(fake.requests().len(), 1);

    // The other worker, same request (modulo spacing) and version: a hit, the provider untouched.
    let spaced = ChatRequest::new(Some("Answer  from the passages."), " How do I reset my password? ");
    let hit = b.chat(&CallContext::new(guild, "support").kb_version(&v1), &spaced).await.expect("hit");
    assert!(hit.from_cache, "the second worker is answered from Redis");
    assert_eq!(hit.text, "Click Forgot password [1].");
    assert_eq!(hit.cost_micros, 0);
    assert_eq!(fake.requests().len(), 1, "no provider call on a hit");

    // The knowledge base changed: the same question misses and asks the provider again.
    fake.push(Dialect::OpenAi, FakeReply::text("Use the new reset page [1]."));
    let miss = b.chat(&CallContext::new(guild, "support").kb_version(&v2), &question).await.expect("miss");
    assert!(!miss.from_cache);
    assert_eq!(miss.text, "Use the new reset page [1].");
    assert_eq!(fake.requests().len(), 2);

    // Another guild never sees this guild's entry.
    fake.push(Dialect::OpenAi, FakeReply::text("other guild"));
    let other = a.chat(&CallContext::new(guild + 1, "support").kb_version(&v1), &question).await.expect("other");
    assert!(!other.from_cache);
    assert_eq!(fake.requests().len(), 3);
}
