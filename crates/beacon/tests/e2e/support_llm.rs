//! Support answers through an LLM, end to end: Beacon configured (through `BEACON_LLM_*`) to use
//! the testkit's fake LLM, `/ask` answered from the fake with citations that map to the passages
//! it was given, tokens recorded, the extractive answer posted when the LLM fails or times out,
//! and the API key never shown in Discord. Plus `beacon ask` and `beacon llm pricing` through the
//! real binary.

use std::process::Command;
use std::time::Duration;

use beacon_testkit::Delivery;
use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply, FakeUsage};
use serde_json::{Value, json};

use crate::harness::*;

const KEY: &str = "sk-beacon-e2e-KEY-0123456789abcdefghij";

const DOCS: &[(&str, &str)] = &[
    (
        "refunds.md",
        "# Refunds\n\nYou can get a refund within 14 days of purchase. Open the billing page, choose the order and press Request refund. Refunds reach your card in 5 business days.\n",
    ),
    (
        "account.md",
        "# Account\n\n## Password reset\n\nTo reset your password, click Forgot password on the login screen and follow the link we e-mail you.\n\n## Two-factor authentication\n\nEnable two-factor authentication under Settings, Security.\n",
    ),
];

fn write_docs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in DOCS {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

fn llm_env(provider: &str, base_url: &str) -> Vec<(String, String)> {
    [
        ("BEACON_LLM_PROVIDER", provider),
        ("BEACON_LLM_API_KEY", KEY),
        ("BEACON_LLM_BASE_URL", base_url),
        ("BEACON_LLM_MAX_RETRIES", "0"),
        ("BEACON_LLM_TIMEOUT", "1s"),
        // The operator lets servers pick this model besides the deployment's own.
        ("BEACON_LLM_GUILD_MODELS", "gpt-guild-model"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Beacon using the fake LLM (`provider` at `base_url`), with the two documents ingested.
async fn with_llm(provider: &str, base_url: &str) -> TestApp {
    let t = TestApp::spawn_with(Options { env: llm_env(provider, base_url), ..Options::default() }).await;
    let dir = write_docs();
    let kb = beacon::backends::open_knowledge_base(&t.app().config, &t.app().store).await.unwrap();
    let report = kb.sync(t.guild.id, &beacon_kb::FolderSource::new(dir.path()), &mut |_| {}).await.unwrap();
    assert_eq!(report.written, 2);
    t
}

fn ask(q: &str) -> Value {
    json!([opt_str("question", q)])
}

/// Every string inside a JSON value, joined by newlines (prompts, whatever the dialect's shape).
fn strings(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(strings).collect::<Vec<_>>().join("\n"),
        Value::Object(map) => map.values().map(strings).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

/// Everything Beacon sent to the fake Discord.
fn discord_output(t: &TestApp) -> String {
    t.fake.requests().iter().map(|r| serde_json::to_string(&r.body).unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

async fn answer_row(t: &TestApp) -> (String, String, i64, i64) {
    let row: (String, String, i64, i64) = sqlx::query_as(
        "SELECT outcome, mode, tokens_in, tokens_out FROM support_answers WHERE guild_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(t.guild.id as i64)
    .fetch_one(t.app().store.pool())
    .await
    .unwrap();
    row
}

#[tokio::test]
async fn ask_is_answered_by_the_llm_with_citations_mapping_to_the_passages() {
    let fake = FakeLlm::start().await.unwrap();
    fake.push(
        Dialect::OpenAi,
        FakeReply::text("Refunds are possible within 14 days of purchase [1]; see the billing page [1][7].")
            .usage(FakeUsage::new(321, 45)),
    );
    let t = with_llm("openai", &fake.openai_base_url()).await;

    let out = t.command(t.member("bob"), "ask", ask("How do I get a refund?"), Delivery::Http).await;
    let text = out.data["content"].as_str().unwrap_or_default();
    assert!(text.contains("Refunds are possible within 14 days of purchase [1]"), "{text}");
    assert!(!text.contains("[7]"), "a citation of a passage that was not given is dropped: {text}");
    assert!(text.contains("-# [1] **Refunds**"), "the cited source is listed: {text}");
    assert!(!text.contains("**Account**"), "only cited sources are listed: {text}");
    assert!(!text.contains("> You can get"), "no extractive quote: {text}");

    // The fake got the passages, numbered, and the question fenced as data.
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let prompt = strings(&request.body);
    assert!(prompt.contains("[1] (Refunds)\nYou can get a refund within 14 days"), "{prompt}");
    assert!(prompt.contains("<member_message>\nHow do I get a refund?\n</member_message>"), "{prompt}");
    assert!(prompt.contains(beacon_support::grounded::CANNOT_ANSWER), "the sentinel is explained: {prompt}");
    assert!(prompt.contains("language"), "{prompt}");

    // Tokens in the answer row; usage recorded for the guild and the support module.
    assert_eq!(answer_row(&t).await, ("answered".to_owned(), "llm".to_owned(), 321, 45));
    let usage: (String, i64, i64, String) = sqlx::query_as(
        "SELECT module, input_tokens, output_tokens, outcome FROM llm_usage WHERE guild_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(t.guild.id as i64)
    .fetch_one(t.app().store.pool())
    .await
    .unwrap();
    assert_eq!(usage, ("support".to_owned(), 321, 45, "ok".to_owned()));

    // A model that repeats the key has it redacted before Discord sees it.
    fake.push(Dialect::OpenAi, FakeReply::text(&format!("Refunds reach your card in 5 business days [1]. {KEY}")));
    let out = t.command(t.member("bob"), "ask", ask("When do refunds reach my card?"), Delivery::Gateway).await;
    let text = out.data["content"].as_str().unwrap_or_default();
    assert!(text.contains("5 business days [1]"), "{text}");
    // The conversation so far travels as fenced context: the member's question and Beacon's answer.
    let prompt = strings(&fake.requests()[1].body);
    assert!(prompt.contains("conversation so far"), "{prompt}");
    assert!(prompt.contains("You answered:\n<member_message>\nRefunds are possible within 14 days"), "{prompt}");
    assert!(prompt.contains("<member_message>\nHow do I get a refund?\n</member_message>"), "{prompt}");
    assert!(prompt.contains("<member_message>\nWhen do refunds reach my card?\n</member_message>"), "{prompt}");
    assert!(!discord_output(&t).contains(KEY), "the key reached Discord");
    t.stop().await;
}

#[tokio::test]
async fn llm_errors_and_timeouts_fall_back_to_the_extractive_answer() {
    let fake = FakeLlm::start().await.unwrap();
    let t = with_llm("openai", &fake.openai_base_url()).await;
    // A 500 whose body repeats the key, a reply slower than BEACON_LLM_TIMEOUT, and an answer
    // that cites no passage (not grounded, so not posted).
    fake.push(Dialect::OpenAi, FakeReply::leaking_error(500));
    fake.push(Dialect::OpenAi, FakeReply::text("too late [1]").delayed(Duration::from_secs(3)));
    fake.push(Dialect::OpenAi, FakeReply::text("too late: trust me, no sources needed"));
    for question in
        ["How do I get a refund?", "How can I request a refund for my order?", "Can I get a refund on my purchase?"]
    {
        let out = t.command(t.member("bob"), "ask", ask(question), Delivery::Http).await;
        let text = out.data["content"].as_str().unwrap_or_default();
        assert!(text.contains("> You can get a refund within 14 days"), "{question}: {text}");
        assert!(text.contains("Source: **Refunds**"), "{text}");
        assert!(!text.contains("too late"), "{text}");
        let (outcome, mode, tokens_in, _) = answer_row(&t).await;
        assert_eq!((outcome.as_str(), mode.as_str()), ("answered", "extractive"));
        // Tokens are recorded only when the provider answered (the uncited reply: 10 in).
        assert_eq!(tokens_in, if question.starts_with("Can I") { 10 } else { 0 }, "{question}");
    }
    assert_eq!(fake.requests().len(), 3);
    let errors: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM llm_usage WHERE guild_id = $1 AND module = 'support' AND outcome = 'error'",
    )
    .bind(t.guild.id as i64)
    .fetch_one(t.app().store.pool())
    .await
    .unwrap();
    assert_eq!(errors, 2);
    assert!(!discord_output(&t).contains(KEY), "the key reached Discord");
    t.stop().await;
}

#[tokio::test]
async fn model_abstentions_the_threshold_the_budget_and_the_guild_model_are_respected() {
    let fake = FakeLlm::start().await.unwrap();
    fake.push(Dialect::OpenAi, FakeReply::text(beacon_support::grounded::CANNOT_ANSWER));
    let t = with_llm("openai", &fake.openai_base_url()).await;
    // The guild's own model (the `llm.model` setting) is the one asked for.
    let out = t
        .command(
            t.owner(),
            "config",
            sub("set", json!([opt_str("key", "llm.model"), opt_str("value", "gpt-guild-model")])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("gpt-guild-model"), "{}", text_of(&out));
    // A model the operator does not allow is refused, and nothing changes.
    let out = t
        .command(
            t.owner(),
            "config",
            sub("set", json!([opt_str("key", "llm.model"), opt_str("value", "gpt-5.5")])),
            Delivery::Http,
        )
        .await;
    assert!(is_ephemeral(&out));
    assert!(text_of(&out).contains("must be one of: gpt-4.1-mini, gpt-guild-model"), "{}", text_of(&out));
    let stored = t.app().store.guild(t.guild.id).setting("llm.model").await.unwrap();
    assert_eq!(stored, Some(json!("gpt-guild-model")));

    // The model saying the passages do not answer is an abstention with a human button.
    let out = t.command(t.member("bob"), "ask", ask("How do I get a refund?"), Delivery::Http).await;
    let text = out.data["content"].as_str().unwrap_or_default();
    assert!(text.contains("won't guess"), "{text}");
    assert!(!text.contains(beacon_support::grounded::CANNOT_ANSWER), "{text}");
    assert_eq!(answer_row(&t).await, ("abstained".to_owned(), "llm".to_owned(), 10, 5));
    assert_eq!(fake.requests()[0].body["model"], json!("gpt-guild-model"));

    // Below the retrieval threshold the model is not asked at all.
    let out = t
        .command(t.member("bob"), "ask", ask("What is the airspeed velocity of an unladen swallow?"), Delivery::Http)
        .await;
    assert!(out.data["content"].as_str().unwrap_or_default().contains("won't guess"));
    assert_eq!(fake.requests().len(), 1);

    // Over the guild's daily budget the model is not asked and the extract is posted.
    let usage = beacon_llm::UsageStore::open(t.app().store.clone()).await.unwrap();
    let budget = beacon_llm::Budget { daily_tokens: Some(15), ..beacon_llm::Budget::default() };
    usage.set_budget(&t.app().store.guild(t.guild.id), &budget).await.unwrap();
    let out = t.command(t.member("bob"), "ask", ask("How can I request a refund for my order?"), Delivery::Http).await;
    let text = out.data["content"].as_str().unwrap_or_default();
    assert!(text.contains("> You can get a refund within 14 days"), "{text}");
    assert_eq!(fake.requests().len(), 1);
    assert_eq!(answer_row(&t).await, ("answered".to_owned(), "extractive".to_owned(), 0, 0));
    t.stop().await;
}

#[tokio::test]
async fn anthropic_answers_the_same_way() {
    let fake = FakeLlm::start().await.unwrap();
    fake.push(
        Dialect::Anthropic,
        FakeReply::text("Click Forgot password on the login screen [1].").usage(FakeUsage::new(200, 20)),
    );
    let t = with_llm("anthropic", &fake.base_url()).await;
    let out = t.command(t.member("bob"), "ask", ask("how can I reset my password"), Delivery::Http).await;
    let text = out.data["content"].as_str().unwrap_or_default();
    assert!(text.contains("Forgot password on the login screen [1]"), "{text}");
    assert!(text.contains("-# [1] **Account** › Password reset"), "{text}");
    let requests = fake.requests();
    assert_eq!(requests[0].path, "/v1/messages");
    assert_eq!(requests[0].header("x-api-key"), Some(KEY));
    assert!(strings(&requests[0].body).contains("<member_message>\nhow can I reset my password\n</member_message>"));
    assert_eq!(answer_row(&t).await, ("answered".to_owned(), "llm".to_owned(), 200, 20));
    assert!(!discord_output(&t).contains(KEY));
    t.stop().await;
}

fn beacon(data: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BEACON_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("BEACON_DATA_DIR", data).env("BEACON_LOG_LEVEL", "error");
    cmd
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{cmd:?}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_answers_through_the_configured_provider_and_edits_prices() {
    let fake = FakeLlm::start().await.unwrap();
    fake.push(Dialect::OpenAi, FakeReply::text("Within 14 days of purchase [1].").usage(FakeUsage::new(99, 9)));
    let base = fake.openai_base_url();
    let data = tempfile::tempdir().unwrap();
    let docs = write_docs();
    let (ask_out, no_llm_out, set_out, list_out) = tokio::task::spawn_blocking({
        let data = data.path().to_owned();
        let docs = docs.path().to_owned();
        move || {
            run(beacon(&data).arg("ingest").arg(&docs));
            let ask_out = run(beacon(&data)
                .args(["ask", "How do I get a refund?"])
                .env("BEACON_LLM_PROVIDER", "openai")
                .env("BEACON_LLM_API_KEY", KEY)
                .env("BEACON_LLM_BASE_URL", &base));
            let no_llm_out = run(beacon(&data).args(["ask", "How do I get a refund?"]));
            let set_out = run(beacon(&data).args([
                "llm",
                "pricing",
                "set",
                "--provider",
                "openai",
                "gpt-e2e",
                "1500000",
                "6000000",
            ]));
            let list_out = run(beacon(&data).args(["llm", "pricing", "list"]));
            (ask_out, no_llm_out, set_out, list_out)
        }
    })
    .await
    .unwrap();

    // Passages first, then the grounded answer with its sources.
    let answer_at = ask_out.find("Answer (99 tokens in, 9 out)").unwrap_or_else(|| panic!("{ask_out}"));
    assert!(ask_out[..answer_at].contains("> You can get a refund within 14 days"), "{ask_out}");
    assert!(ask_out[answer_at..].contains("Within 14 days of purchase [1]."), "{ask_out}");
    assert!(ask_out[answer_at..].contains("Sources:\n[1] Refunds"), "{ask_out}");
    assert!(!ask_out.contains(KEY));
    assert_eq!(fake.requests().len(), 1);
    assert!(strings(&fake.requests()[0].body).contains("<member_message>\nHow do I get a refund?\n</member_message>"));
    // Without a provider: passages only.
    assert!(!no_llm_out.contains("Answer ("), "{no_llm_out}");
    assert!(no_llm_out.contains("> You can get a refund"), "{no_llm_out}");

    assert!(set_out.contains("openai gpt-e2e: input $1.500000"), "{set_out}");
    let line = list_out.lines().find(|l| l.contains("gpt-e2e")).unwrap_or_else(|| panic!("{list_out}"));
    let numbers: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&numbers[..6], ["openai", "gpt-e2e", "1500000", "1500000", "1500000", "6000000"], "{line}");
    assert!(list_out.contains("gpt-4.1-mini"), "seeded prices are listed: {list_out}");

    // A bad provider is a configuration error naming the variable.
    let out = beacon(data.path()).args(["ask", "x"]).env("BEACON_LLM_PROVIDER", "bard").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("BEACON_LLM"), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn last_cost(t: &TestApp) -> (String, i64) {
    sqlx::query_as(
        "SELECT model, cost_micros FROM llm_usage WHERE guild_id = $1 AND outcome = 'ok' ORDER BY id DESC LIMIT 1",
    )
    .bind(t.guild.id as i64)
    .fetch_one(t.app().store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn usage_shows_today_and_thirty_days_by_feature_and_model_against_the_budget() {
    let fake = FakeLlm::start().await.unwrap();
    fake.push(Dialect::OpenAi, FakeReply::text("Within 14 days [1].").usage(FakeUsage::new(321, 45)));
    let mut env = llm_env("openai", &fake.openai_base_url());
    env.push(("BEACON_LLM_GUILD_DAILY_BUDGET".into(), "0.50".into()));
    let t = TestApp::spawn_with(Options { env, ..Options::default() }).await;
    let dir = write_docs();
    let kb = beacon::backends::open_knowledge_base(&t.app().config, &t.app().store).await.unwrap();
    kb.sync(t.guild.id, &beacon_kb::FolderSource::new(dir.path()), &mut |_| {}).await.unwrap();

    let out = t.command(t.member("bob"), "ask", ask("How do I get a refund?"), Delivery::Http).await;
    assert!(text_of(&out).contains("Within 14 days [1]."), "{}", text_of(&out));
    // gpt-4.1-mini at $0.40 in / $1.60 out per MTok: 321 and 45 tokens cost $0.000201 (rounded up).
    assert_eq!(last_cost(&t).await, ("gpt-4.1-mini".to_owned(), 201));
    // Older records: one 10 days ago (in the 30 days), one 40 days ago (not), one of another guild.
    let usage = beacon_llm::UsageStore::attach(t.app().store.clone());
    let day_ms = 86_400_000;
    for (guild, module, model, cost, days_ago) in [
        (t.guild.id, "tickets", "gpt-4.1-nano", 1_234_567, 10),
        (t.guild.id, "tickets", "gpt-4.1-nano", 9_000_000, 40),
        (t.guild.id + 1, "support", "gpt-4.1-mini", 7_000_000, 0),
    ] {
        let record = beacon_llm::UsageRecord {
            guild_id: guild,
            module: module.into(),
            user_id: None,
            provider: "openai".into(),
            model: model.into(),
            usage: beacon_llm::Usage { input_tokens: 1000, output_tokens: 100, ..beacon_llm::Usage::default() },
            cost_micros: cost,
            latency_ms: 5,
            outcome: beacon_llm::Outcome::Ok,
            error_kind: None,
            at: beacon_store::now_ms() - days_ago * day_ms,
        };
        usage.record(&record).await.unwrap();
    }

    let out = t.command(t.owner(), "usage", sub("show", json!([])), Delivery::Http).await;
    assert!(is_ephemeral(&out));
    let text = text_of(&out);
    assert!(text.contains("**$0.000201 of $0.500000 spent today** (0%)"), "{text}");
    assert!(text.contains("Operator's budget: $0.500000 a day (the deployment's default)"), "{text}");
    assert!(text.contains("Model: `gpt-4.1-mini` (the deployment's)"), "{text}");
    let today = text
        .lines()
        .skip_while(|l| !l.starts_with("Today"))
        .take_while(|l| !l.starts_with("Last 30"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(today.starts_with("Today — 1 calls · 366 tokens · $0.000201"), "{today}");
    assert!(today.contains("`support` · 1 calls · 366 tokens · $0.000201"), "{today}");
    assert!(today.contains("`openai:gpt-4.1-mini` · 1 calls"), "{today}");
    assert!(!today.contains("tickets"), "{today}");
    let month = text.lines().skip_while(|l| !l.starts_with("Last 30")).collect::<Vec<_>>().join("\n");
    assert!(month.starts_with("Last 30 days — 2 calls · 1466 tokens · $1.234768"), "{month}");
    assert!(month.contains("`tickets` · 1 calls · 1100 tokens · $1.234567"), "{month}");
    assert!(month.contains("`openai:gpt-4.1-nano` · 1 calls"), "{month}");
    assert!(!text.contains("$7.000000") && !text.contains("$9.000000"), "other guilds and older days stay out: {text}");

    // Members do not see the server's spending.
    let out = t.command(t.member("bob"), "usage", sub("show", json!([])), Delivery::Http).await;
    assert!(is_ephemeral(&out));
    assert!(!text_of(&out).contains("spent today"), "{}", text_of(&out));
    t.stop().await;
}

#[tokio::test]
async fn a_server_lowers_its_budget_but_cannot_raise_it() {
    let fake = FakeLlm::start().await.unwrap();
    fake.push(Dialect::OpenAi, FakeReply::text("Within 14 days [1].").usage(FakeUsage::new(321, 45)));
    let mut env = llm_env("openai", &fake.openai_base_url());
    env.push(("BEACON_LLM_GUILD_DAILY_BUDGET".into(), "0.50".into()));
    let t = TestApp::spawn_with(Options { env, ..Options::default() }).await;
    let dir = write_docs();
    let kb = beacon::backends::open_knowledge_base(&t.app().config, &t.app().store).await.unwrap();
    kb.sync(t.guild.id, &beacon_kb::FolderSource::new(dir.path()), &mut |_| {}).await.unwrap();
    let limit = |options: Value| sub("limit", options);
    let usd = |v: &str| opt_str("daily_usd", v);

    for (options, expected) in [
        (json!([usd("5")]), "can be at most $0.500000 a day (set by the operator). You can lower it, not raise it."),
        (json!([usd("ten")]), "daily_usd: `ten` is not an amount of US dollars"),
        (json!([]), "Give `daily_usd`"),
        (json!([usd("0.1"), { "name": "clear", "type": 5, "value": true }]), "Use `clear` alone"),
    ] {
        let out = t.command(t.owner(), "usage", limit(options), Delivery::Http).await;
        assert!(is_ephemeral(&out));
        assert!(text_of(&out).contains(expected), "{expected}: {}", text_of(&out));
    }
    let own = beacon_llm::UsageStore::attach(t.app().store.clone());
    let guild = t.app().store.guild(t.guild.id);
    assert_eq!(own.guild_limits(&guild).await.unwrap(), beacon_llm::usage::GuildLimits::default(), "nothing stored");

    let out = t
        .command(
            t.owner(),
            "usage",
            limit(json!([usd("$0.0001"), { "name": "member_daily_calls", "type": 4, "value": 5 }])),
            Delivery::Http,
        )
        .await;
    assert!(text_of(&out).contains("now $0.000100 a day, 5 AI answers per member a day"), "{}", text_of(&out));

    // The first answer costs $0.000201, over the server's own $0.0001: the next one is quoted
    // from the knowledge base without asking the model.
    t.command(t.member("bob"), "ask", ask("How do I get a refund?"), Delivery::Http).await;
    let out = t.command(t.member("bob"), "ask", ask("How can I request a refund for my order?"), Delivery::Http).await;
    assert!(text_of(&out).contains("> You can get a refund within 14 days"), "{}", text_of(&out));
    assert_eq!(fake.requests().len(), 1, "no model call over the server's budget");
    let out = t.command(t.owner(), "usage", sub("show", json!([])), Delivery::Http).await;
    let text = text_of(&out);
    assert!(text.contains("**$0.000201 of $0.000100 spent today** (201%)"), "{text}");
    assert!(text.contains("This server's own limit: $0.000100 a day."), "{text}");
    assert!(text.contains("Each member: at most 5 AI answers a day."), "{text}");

    let out = t
        .command(t.owner(), "usage", limit(json!([{ "name": "clear", "type": 5, "value": true }])), Delivery::Http)
        .await;
    assert!(text_of(&out).contains("own AI limits are removed"), "{}", text_of(&out));
    fake.push(Dialect::OpenAi, FakeReply::text("Five business days [1].").usage(FakeUsage::new(10, 5)));
    let out = t.command(t.member("bob"), "ask", ask("When does a refund reach my card?"), Delivery::Http).await;
    assert!(text_of(&out).contains("Five business days [1]."), "{}", text_of(&out));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn prices_and_budgets_set_from_the_cli_reach_the_running_bot() {
    let fake = FakeLlm::start().await.unwrap();
    fake.push(Dialect::OpenAi, FakeReply::text("Within 14 days [1].").usage(FakeUsage::new(321, 45)));
    let t = with_llm("openai", &fake.openai_base_url()).await;
    t.command(t.member("bob"), "ask", ask("How do I get a refund?"), Delivery::Http).await;
    assert_eq!(last_cost(&t).await, ("gpt-4.1-mini".to_owned(), 201));

    // The operator reprices the model from another process, on the same database.
    let data = t.app().config.data_dir.clone();
    let guild = t.guild.id.to_string();
    let (set_out, budget_out, show_out) = tokio::task::spawn_blocking({
        let guild = guild.clone();
        move || {
            let set_out = run(beacon(&data).args([
                "llm",
                "pricing",
                "set",
                "--provider",
                "openai",
                "gpt-4.1-mini",
                "1000000",
                "2000000",
            ]));
            let budget_out = run(beacon(&data).args([
                "llm",
                "budget",
                "set",
                &guild,
                "--daily-usd",
                "0.0005",
                "--member-daily-calls",
                "10",
            ]));
            let show_out = run(beacon(&data).args(["llm", "budget", "show", &guild]));
            (set_out, budget_out, show_out)
        }
    })
    .await
    .unwrap();
    assert!(set_out.contains("Running Beacon processes use it from their next AI call."), "{set_out}");
    assert!(budget_out.contains("$0.000500 a day"), "{budget_out}");
    assert!(show_out.contains("operator (set for this guild): $0.000500 a day"), "{show_out}");
    assert!(show_out.contains("today: 1 calls · 366 tokens · $0.000201"), "{show_out}");

    // The running bot charges the new price at once: 321 × $1 + 45 × $2 per MTok = $0.000411.
    fake.push(Dialect::OpenAi, FakeReply::text("Five business days [1].").usage(FakeUsage::new(321, 45)));
    t.command(t.member("bob"), "ask", ask("When does a refund reach my card?"), Delivery::Http).await;
    assert_eq!(last_cost(&t).await, ("gpt-4.1-mini".to_owned(), 411));
    // $0.000612 spent is over the operator's $0.0005 for this server: no third model call.
    let out = t.command(t.member("bob"), "ask", ask("How can I request a refund for my order?"), Delivery::Http).await;
    assert!(text_of(&out).contains("> You can get a refund within 14 days"), "{}", text_of(&out));
    assert_eq!(fake.requests().len(), 2);

    // Clearing the operator's budget restores the deployment default ($1.00 a day).
    let data = t.app().config.data_dir.clone();
    let clear_out =
        tokio::task::spawn_blocking(move || run(beacon(&data).args(["llm", "budget", "clear", &guild]))).await.unwrap();
    assert!(clear_out.contains("the deployment's default applies"), "{clear_out}");
    let view = beacon_llm::UsageStore::attach(t.app().store.clone())
        .budget_view(
            &t.app().store.guild(t.guild.id),
            &beacon_llm::CostPolicy { guild_models: vec![], guild_daily_cost_micros: Some(1_000_000) },
        )
        .await
        .unwrap();
    assert!(!view.operator_set);
    t.stop().await;
}

/// "Suggest reply" drafts from the whole ticket: the member's short last message ("on my laptop")
/// is read with what they asked before, and the LLM sees the conversation — the member's and
/// staff's messages — with personal data redacted.
#[tokio::test]
async fn suggest_reply_drafts_from_the_whole_ticket_redacted() {
    let fake = FakeLlm::start().await.unwrap();
    fake.push(Dialect::OpenAi, FakeReply::text("Turn it on under Settings, Security [1]."));
    let t = with_llm("openai", &fake.openai_base_url()).await;
    let bob = t.member("bob");
    let thread = t.open_ticket(bob, "account trouble").await;
    t.fake
        .send_message(
            t.guild.id,
            thread,
            bob,
            "How do I enable two-factor authentication? Reach me at bob.smith@example.com",
        )
        .await
        .unwrap();
    let owner = t.owner();
    t.fake.send_message(t.guild.id, thread, owner, "Which device are you on?").await.unwrap();
    t.fake.send_message(t.guild.id, thread, bob, "on my laptop").await.unwrap();
    let panel = t
        .fake
        .messages(thread)
        .into_iter()
        .find(|m| serde_json::to_string(&m["components"]).unwrap_or_default().contains("tickets:suggest:1"))
        .and_then(|m| m["id"].as_str().and_then(|s| s.parse::<u64>().ok()))
        .expect("the ticket's panel");
    let h = t.fake.click_button(t.guild.id, thread, owner, panel, "tickets:suggest:1", Delivery::Http).await.unwrap();
    let drafts = t.fake.wait_followups(&h, 1, WAIT).await.unwrap();
    let draft = drafts[0]["content"].as_str().unwrap_or_default();
    assert!(draft.contains("Settings, Security [1]"), "{draft}");
    let requests = fake.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let prompt = strings(&requests[0].body);
    assert!(prompt.contains("[1] (Account › Two-factor authentication)"), "{prompt}");
    assert!(prompt.contains("Question:\n<member_message>\non my laptop\n</member_message>"), "{prompt}");
    assert!(
        prompt.contains("Member:\n<member_message>\nHow do I enable two-factor authentication? Reach me at [email]"),
        "{prompt}"
    );
    assert!(prompt.contains("Staff:\n<member_message>\nWhich device are you on?"), "{prompt}");
    assert!(prompt.contains("Member:\n<member_message>\naccount trouble"), "the topic: {prompt}");
    assert!(!prompt.contains("bob.smith") && !prompt.contains("example.com"), "{prompt}");
    t.stop().await;
}
