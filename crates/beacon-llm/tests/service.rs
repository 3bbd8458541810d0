//! Service-level behaviour beyond the per-provider conformance suite: configuration from the
//! environment, response cache, budgets, pricing edits and summaries.

mod common;

use beacon_config::{LlmSettings, Source};
use beacon_llm::{
    Budget, CallContext, ChatRequest, GroupBy, LlmConfig, LlmError, LlmService, Price, ProviderKind, usage::day_of,
};
use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply, FakeUsage};
use common::{GUILD, Harness};

fn today() -> i64 {
    day_of(beacon_store::now_ms())
}

#[tokio::test]
async fn disabled_service_says_not_configured() {
    let config = LlmConfig::from_settings(&LlmSettings::default()).expect("config");
    let service = LlmService::new(&config).expect("service");
    assert!(!service.is_enabled());
    let err = service.chat(&CallContext::new(GUILD, "ask"), &ChatRequest::new(None, "hi")).await.expect_err("disabled");
    assert!(matches!(err, LlmError::NotConfigured));
    assert_eq!(err.user_message(), "AI answers are not enabled on this server.");
}

#[tokio::test]
async fn environment_configures_the_chain() {
    let fake = FakeLlm::start().await.expect("fake");
    let (openai_url, anthropic_url) = (fake.openai_base_url(), fake.base_url());
    let env = Source::from_pairs([
        ("BEACON_LLM_PROVIDER", "openai-compatible"),
        ("BEACON_LLM_MODEL", "llama3.1:8b"),
        ("BEACON_LLM_BASE_URL", openai_url.as_str()),
        ("BEACON_LLM_FALLBACKS", "anthropic:claude-sonnet-4-5"),
        ("BEACON_LLM_FALLBACK_1_API_KEY", "sk-ant-env-key-123"),
        ("BEACON_LLM_FALLBACK_1_BASE_URL", anthropic_url.as_str()),
        ("BEACON_LLM_MAX_RETRIES", "0"),
    ]);
    let config = LlmConfig::from_settings(&LlmSettings::from_source(&env).expect("settings")).expect("config");
    let service = LlmService::new(&config).expect("service");
    fake.push(Dialect::OpenAi, FakeReply::status(500));
    fake.push(Dialect::Anthropic, FakeReply::text("hello from anthropic"));
    let r = service.chat(&CallContext::new(GUILD, "ask"), &ChatRequest::new(None, "hi")).await.expect("chat");
    assert_eq!(r.text, "hello from anthropic");
    assert_eq!(r.model, "claude-sonnet-4-5");
    let requests = fake.requests();
    assert_eq!(requests[0].body["model"], "llama3.1:8b");
    assert_eq!(requests[0].header("authorization"), None, "no key configured, none sent");
    assert_eq!(requests[1].header("x-api-key"), Some("sk-ant-env-key-123"));
}

#[tokio::test]
async fn response_cache_is_keyed_by_request_and_kb_version() {
    let h = Harness::new(&[ProviderKind::OpenAi]).await;
    h.fake.push(Dialect::OpenAi, FakeReply::text("answer v1"));
    h.fake.push(Dialect::OpenAi, FakeReply::text("answer v2"));
    let ctx = CallContext::new(GUILD, "ask").kb_version("kb-1");
    let first = h.service.chat(&ctx, &ChatRequest::new(Some("sys"), "How do I  reset?")).await.expect("first");
    assert!(!first.from_cache);
    // Same question modulo spacing: served from the cache, free.
    let second = h.service.chat(&ctx, &ChatRequest::new(Some("sys"), " How do I reset? ")).await.expect("second");
    assert!(second.from_cache);
    assert_eq!(second.text, "answer v1");
    assert_eq!(second.cost_micros, 0);
    assert_eq!(h.fake.requests().len(), 1);
    // A new knowledge-base version misses.
    let ctx2 = CallContext::new(GUILD, "ask").kb_version("kb-2");
    let third = h.service.chat(&ctx2, &ChatRequest::new(Some("sys"), "How do I reset?")).await.expect("third");
    assert_eq!(third.text, "answer v2");
    // Another guild never sees this guild's entry.
    h.fake.push(Dialect::OpenAi, FakeReply::text("other guild"));
    let other = CallContext::new(GUILD + 1, "ask").kb_version("kb-1");
    let r = h.service.chat(&other, &ChatRequest::new(Some("sys"), "How do I reset?")).await.expect("other");
    assert_eq!(r.text, "other guild");
    // No kb version: no caching.
    h.fake.push(Dialect::OpenAi, FakeReply::text("uncached"));
    let plain = CallContext::new(GUILD, "ask");
    let r = h.service.chat(&plain, &ChatRequest::new(Some("sys"), "How do I reset?")).await.expect("plain");
    assert_eq!(r.text, "uncached");
    let rows = h.usage.summary(Some(GUILD), GroupBy::Module, today(), today()).await.expect("summary");
    assert_eq!((rows[0].calls, rows[0].cache_hits), (4, 1));
}

#[tokio::test]
async fn budgets_are_checked_before_the_call() {
    let h = Harness::new(&[ProviderKind::Anthropic]).await;
    let guild = h.usage.store().guild(GUILD);
    h.usage.set_budget(&guild, &Budget { daily_tokens: Some(100), ..Budget::default() }).await.expect("budget");
    h.fake.push(Dialect::Anthropic, FakeReply::text("first").usage(FakeUsage::new(90, 20)));
    let ctx = CallContext::new(GUILD, "ask");
    h.service.chat(&ctx, &ChatRequest::new(None, "q1")).await.expect("under budget");
    let err = h.service.chat(&ctx, &ChatRequest::new(None, "q2")).await.expect_err("over budget");
    assert!(matches!(err, LlmError::BudgetExceeded(_)), "{err:?}");
    assert_eq!(h.fake.requests().len(), 1, "no provider call once the budget is spent");
    // Other guilds are not affected.
    h.service.chat(&CallContext::new(GUILD + 1, "ask"), &ChatRequest::new(None, "q3")).await.expect("other guild");

    // Cost budget.
    h.usage
        .set_budget(&guild, &Budget { daily_cost_micros: Some(1_000_000), ..Budget::default() })
        .await
        .expect("budget");
    h.service.chat(&ctx, &ChatRequest::new(None, "q4")).await.expect("cost under budget");

    // Per-member call limit.
    h.usage.set_budget(&guild, &Budget { user_daily_calls: Some(1), ..Budget::default() }).await.expect("budget");
    let alice = CallContext::new(GUILD, "ask").user(1);
    let bob = CallContext::new(GUILD, "ask").user(2);
    h.service.chat(&alice, &ChatRequest::new(None, "a1")).await.expect("alice 1");
    let err = h.service.chat(&alice, &ChatRequest::new(None, "a2")).await.expect_err("alice 2");
    assert!(matches!(err, LlmError::UserLimitExceeded(_)), "{err:?}");
    assert!(!err.should_fall_back());
    h.service.chat(&bob, &ChatRequest::new(None, "b1")).await.expect("bob 1");
}

#[tokio::test]
async fn pricing_edits_change_recorded_costs() {
    let h = Harness::new(&[ProviderKind::OpenAiCompatible]).await;
    // Local models have no seeded price: cost 0.
    h.fake.push(Dialect::OpenAi, FakeReply::text("free").usage(FakeUsage::new(1000, 1000)));
    let ctx = CallContext::new(GUILD, "ask");
    assert_eq!(h.service.chat(&ctx, &ChatRequest::new(None, "q")).await.expect("chat").cost_micros, 0);
    // An operator prices it (`beacon llm pricing set`, in another process): the running service
    // picks the new price up by itself, and the next call costs exactly that.
    h.usage
        .set_price(&Price {
            provider: "openai-compatible".into(),
            model: "local-model".into(),
            input: 1_000_000,
            cached_input: 0,
            cache_write: 0,
            output: 2_000_000,
        })
        .await
        .expect("set price");
    h.fake.push(Dialect::OpenAi, FakeReply::text("paid").usage(FakeUsage::new(1000, 1000)));
    let r = h.service.chat(&ctx, &ChatRequest::new(None, "q2")).await.expect("chat");
    assert_eq!(r.cost_micros, 1000 + 2000);
    assert!(h.usage.remove_price("openai-compatible", "local-model").await.expect("remove"));
    h.fake.push(Dialect::OpenAi, FakeReply::text("free again").usage(FakeUsage::new(1000, 1000)));
    let r = h.service.chat(&ctx, &ChatRequest::new(None, "q3")).await.expect("chat");
    assert_eq!(r.cost_micros, 0, "a removed price is noticed too");
    // Seeds are in the store and survive reopening.
    let table = h.usage.pricing().await.expect("pricing");
    assert!(table.lookup("anthropic", "claude-haiku-4-5").is_some());
}

#[tokio::test]
async fn summaries_group_by_guild_module_model_and_day() {
    let h = Harness::new(&[ProviderKind::OpenAi]).await;
    let calls = [(GUILD, "ask", 100, 10), (GUILD, "tickets", 200, 20), (GUILD + 1, "ask", 300, 30)];
    let mut total_cost = 0;
    for (guild, module, input, output) in calls {
        h.fake.push(Dialect::OpenAi, FakeReply::text("ok").usage(FakeUsage::new(input, output)));
        let r = h.service.chat(&CallContext::new(guild, module), &ChatRequest::new(None, "q")).await.expect("chat");
        total_cost += r.cost_micros;
    }
    let by_guild = h.usage.summary(None, GroupBy::Guild, today(), today()).await.expect("guild");
    assert_eq!(by_guild.len(), 2);
    assert_eq!(by_guild[0].key, GUILD.to_string());
    assert_eq!(by_guild[0].usage.input_tokens, 300);
    assert_eq!(by_guild.iter().map(|r| r.cost_micros).sum::<u64>(), total_cost);
    let by_module = h.usage.summary(Some(GUILD), GroupBy::Module, today(), today()).await.expect("module");
    let modules: Vec<(&str, u64)> = by_module.iter().map(|r| (r.key.as_str(), r.usage.output_tokens)).collect();
    assert_eq!(modules, vec![("ask", 10), ("tickets", 20)]);
    let by_model = h.usage.summary(None, GroupBy::Model, today(), today()).await.expect("model");
    assert_eq!(by_model[0].key, "openai:gpt-4.1-mini");
    assert_eq!(by_model[0].calls, 3);
    let by_day = h.usage.summary(None, GroupBy::Day, today(), today()).await.expect("day");
    assert_eq!(by_day[0].key, beacon_llm::usage::format_day(today()));
    assert_eq!(by_day[0].cost_micros, total_cost);
    assert!(h.usage.summary(None, GroupBy::Day, today() + 1, today() + 2).await.expect("empty").is_empty());
}

#[tokio::test]
async fn guild_model_setting_overrides_the_model_among_those_the_operator_allows() {
    let h = Harness::new(&[ProviderKind::OpenAi]).await;
    let service = h
        .service
        .clone()
        .with_policy(beacon_llm::CostPolicy { guild_models: vec!["gpt-5-mini".into()], guild_daily_cost_micros: None });
    let guild = h.usage.store().guild(GUILD);
    guild.upsert("Beacon HQ", Some(1)).await.expect("guild");
    assert_eq!(service.guild_model(GUILD).await.expect("none"), None);
    // A model the operator does not allow (set before the list was narrowed) is ignored.
    guild.set_setting(beacon_llm::MODEL_SETTING, Some(&serde_json::json!("gpt-5.5")), 1).await.expect("setting");
    assert_eq!(service.guild_model(GUILD).await.expect("not allowed"), None);
    guild.set_setting(beacon_llm::MODEL_SETTING, Some(&serde_json::json!("gpt-5-mini")), 1).await.expect("setting");
    assert_eq!(h.service.guild_model(GUILD).await.expect("default policy"), None, "no extra models by default");
    let model = service.guild_model(GUILD).await.expect("model");
    assert_eq!(model.as_deref(), Some("gpt-5-mini"));
    h.fake.push(Dialect::OpenAi, FakeReply::text("hi"));
    let ctx = CallContext::new(GUILD, "ask").model(model);
    service.chat(&ctx, &ChatRequest::new(None, "q")).await.expect("chat");
    assert_eq!(h.fake.requests()[0].body["model"], "gpt-5-mini");
}

#[tokio::test]
async fn a_guild_lowers_the_operators_budget_and_never_raises_it() {
    use beacon_llm::usage::GuildLimits;
    let h = Harness::new(&[ProviderKind::Anthropic]).await;
    let policy = beacon_llm::CostPolicy { guild_models: Vec::new(), guild_daily_cost_micros: Some(1_000_000) };
    let service = h.service.clone().with_policy(policy.clone());
    let guild = h.usage.store().guild(GUILD);

    // The deployment default applies until anything is set.
    let view = h.usage.budget_view(&guild, &policy).await.expect("view");
    assert!(!view.operator_set);
    assert_eq!(view.effective.daily_cost_micros, Some(1_000_000));

    // The guild lowers it: enforced. A "raise" stored anyway is only ever applied as a lowering.
    h.usage
        .set_guild_limits(&guild, &GuildLimits { daily_cost_micros: Some(5), member_daily_calls: Some(3) })
        .await
        .expect("limits");
    let view = h.usage.budget_view(&guild, &policy).await.expect("view");
    assert_eq!((view.effective.daily_cost_micros, view.effective.user_daily_calls), (Some(5), Some(3)));
    h.fake.push(Dialect::Anthropic, FakeReply::text("first").usage(FakeUsage::new(1000, 1000)));
    let ctx = CallContext::new(GUILD, "ask");
    service.chat(&ctx, &ChatRequest::new(None, "q1")).await.expect("under the guild's budget");
    let err = service.chat(&ctx, &ChatRequest::new(None, "q2")).await.expect_err("over the guild's budget");
    assert!(matches!(err, LlmError::BudgetExceeded(_)), "{err:?}");
    h.usage
        .set_guild_limits(&guild, &GuildLimits { daily_cost_micros: Some(50_000_000), member_daily_calls: None })
        .await
        .expect("limits");
    let view = h.usage.budget_view(&guild, &policy).await.expect("view");
    assert_eq!(view.effective.daily_cost_micros, Some(1_000_000), "the operator's ceiling still holds");

    // The operator's own budget for the guild replaces the default, and clearing it restores it.
    h.usage
        .set_budget(&guild, &Budget { daily_cost_micros: Some(20_000_000), ..Budget::default() })
        .await
        .expect("set");
    let view = h.usage.budget_view(&guild, &policy).await.expect("view");
    assert!(view.operator_set);
    assert_eq!(view.effective.daily_cost_micros, Some(20_000_000));
    assert!(h.usage.clear_budget(&guild).await.expect("clear"));
    let view = h.usage.budget_view(&guild, &policy).await.expect("view");
    assert_eq!(view.effective.daily_cost_micros, Some(1_000_000));
}

#[tokio::test]
async fn provider_health_counts_today_and_implies_the_breaker_state() {
    use beacon_llm::BreakerState;
    use std::time::Duration;
    let mut r = common::reliability();
    r.max_retries = 0;
    r.breaker_failures = 2;
    let h = Harness::with(&[ProviderKind::OpenAi], r).await;
    let ctx = CallContext::new(GUILD, "ask");
    h.fake.push(Dialect::OpenAi, FakeReply::text("fine"));
    h.service.chat(&ctx, &ChatRequest::new(None, "q1")).await.expect("ok");
    let health = h.usage.provider_health("openai", today(), 2).await.expect("health");
    assert_eq!((health.calls, health.errors, health.failure_streak), (1, 0, 0));
    assert_eq!(health.last_error, None);
    assert_eq!(health.breaker_state(2, Duration::from_secs(30), beacon_store::now_ms()), BreakerState::Closed);

    h.fake.push(Dialect::OpenAi, FakeReply::status(503));
    h.fake.push(Dialect::OpenAi, FakeReply::status(500));
    for q in ["q2", "q3"] {
        h.service.chat(&ctx, &ChatRequest::new(None, q)).await.expect_err("fails");
    }
    let now = beacon_store::now_ms();
    let health = h.usage.provider_health("openai", today(), 2).await.expect("health");
    assert_eq!((health.calls, health.errors, health.failure_streak), (3, 2, 2));
    let (kind, at) = health.last_error.clone().expect("last error");
    assert_eq!(kind, "http");
    assert!(at <= now);
    assert_eq!(health.breaker_state(2, Duration::from_secs(30), now), BreakerState::Open);
    assert_eq!(health.breaker_state(2, Duration::from_secs(30), at + 31_000), BreakerState::HalfOpen);
    assert_eq!(health.breaker_state(3, Duration::from_secs(30), now), BreakerState::Closed);
    assert_eq!(h.usage.provider_health("anthropic", today(), 2).await.expect("other"), Default::default());
}
