//! `/status` reports the LLM: without a provider, that answers are extractive; with one, each
//! provider of the chain with its breaker state, calls and errors today and its latest error,
//! this server's model (its `llm.model` setting) and its usage today against its daily budget.

use beacon_testkit::Delivery;
use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply, FakeUsage};
use serde_json::json;

use crate::harness::*;

const KEY: &str = "sk-beacon-status-KEY-0123456789abcdefghij";

#[tokio::test]
async fn status_says_there_is_no_llm_when_none_is_configured() {
    let t = TestApp::spawn().await;
    let out = t.command(t.member("bob"), "status", json!([]), Delivery::Http).await;
    let text = text_of(&out);
    assert!(text.contains("LLM: none (extractive answers)"), "{text}");
    t.stop().await;
}

#[tokio::test]
async fn status_shows_each_providers_breaker_and_this_servers_usage_against_its_budget() {
    let fake = FakeLlm::start().await.unwrap();
    let env = [
        ("BEACON_LLM_PROVIDER", "openai".to_owned()),
        ("BEACON_LLM_API_KEY", KEY.to_owned()),
        ("BEACON_LLM_BASE_URL", fake.openai_base_url()),
        ("BEACON_LLM_FALLBACKS", "anthropic".to_owned()),
        ("BEACON_LLM_FALLBACK_1_API_KEY", KEY.to_owned()),
        ("BEACON_LLM_FALLBACK_1_BASE_URL", fake.base_url()),
        ("BEACON_LLM_MAX_RETRIES", "0".to_owned()),
        ("BEACON_LLM_GUILD_MODELS", "gpt-guild-model".to_owned()),
        ("BEACON_LLM_BREAKER_FAILURES", "1".to_owned()),
        ("BEACON_LLM_BREAKER_COOLDOWN", "10m".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let t = TestApp::spawn_with(Options { env, ..Options::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("refunds.md"),
        "# Refunds\n\nYou can get a refund within 14 days of purchase. Open the billing page and press Request refund.\n",
    )
    .unwrap();
    let kb = beacon::backends::open_knowledge_base(&t.app().config, &t.app().store).await.unwrap();
    kb.sync(t.guild.id, &beacon_kb::FolderSource::new(dir.path()), &mut |_| {}).await.unwrap();

    // The guild's own model and budget.
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "llm.model"), opt_str("value", "gpt-guild-model")])),
        Delivery::Http,
    )
    .await;
    let usage = beacon_llm::UsageStore::open(t.app().store.clone()).await.unwrap();
    let budget =
        beacon_llm::Budget { daily_tokens: Some(10_000), daily_cost_micros: Some(2_000_000), ..Default::default() };
    usage.set_budget(&t.app().store.guild(t.guild.id), &budget).await.unwrap();

    // OpenAI fails (its breaker opens after one failure); Anthropic answers.
    fake.push(Dialect::OpenAi, FakeReply::status(500));
    fake.push(Dialect::Anthropic, FakeReply::text("Within 14 days of purchase [1].").usage(FakeUsage::new(120, 30)));
    let out =
        t.command(t.member("bob"), "ask", json!([opt_str("question", "How do I get a refund?")]), Delivery::Http).await;
    assert!(text_of(&out).contains("Within 14 days of purchase [1]"), "{out:?}");

    let out = t.command(t.member("bob"), "status", json!([]), Delivery::Http).await;
    assert!(is_ephemeral(&out));
    let text = text_of(&out);
    assert!(text.contains("Model here: gpt-guild-model (this server's llm.model)"), "{text}");
    let openai =
        text.lines().find(|l| l.starts_with("1. openai gpt-4.1-mini (primary)")).unwrap_or_else(|| panic!("{text}"));
    assert!(openai.contains("breaker 🔴 open") && openai.contains("today 1 calls, 1 errors"), "{openai}");
    assert!(openai.contains("last error http <t:"), "{openai}");
    let anthropic = text
        .lines()
        .find(|l| l.starts_with("2. anthropic claude-haiku-4-5 (fallback)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(anthropic.contains("breaker 🟢 closed") && anthropic.contains("today 1 calls, 0 errors"), "{anthropic}");
    assert!(anthropic.contains("no errors"), "{anthropic}");
    let totals = usage
        .day_totals(&t.app().store.guild(t.guild.id), None, beacon_llm::usage::day_of(beacon_store::now_ms()))
        .await
        .unwrap();
    let expected = format!(
        "This server today: 150 of 10000 tokens · {} of {}",
        beacon_llm::pricing::format_usd(totals.cost_micros),
        beacon_llm::pricing::format_usd(2_000_000)
    );
    assert!(totals.cost_micros > 0);
    assert!(text.contains(&expected), "{expected}\n{text}");
    assert!(!text.contains(KEY));
    t.stop().await;
}
