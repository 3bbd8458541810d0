//! Support-answer overhead: a member's question message in → Beacon's reply seen by Discord,
//! with no LLM. Runs Beacon in-process against the testkit's fake Discord (gateway + REST on
//! loopback), answers from a small knowledge base, one question at a time, and prints p50/p99.
//!
//! ```sh
//! cargo run --release -p beacon --example answer_overhead -- 500
//! cargo run --release -p beacon --example answer_overhead -- 500 llm   # with the fake LLM
//! ```
//!
//! With `llm`, answers go through the LLM path (OpenAI-compatible provider) against the
//! testkit's fake LLM answering at once with a cited answer: the LLM path's own overhead.
//! The last line printed is the same figures as JSON, for `bench/run.sh`.
//!
//! The fake's rate limits are lifted: a steady stream in one channel would otherwise measure
//! Discord's buckets (which Beacon honours) rather than Beacon.
//!
//! The knowledge base uses the model of `BEACON_EMBED_MODEL_DIR` (and the cross-encoder of
//! `BEACON_RERANK_MODEL_DIR`) when set, as `beacon run` would; unset, it is BM25 only. With a
//! model the same questions are then embedded alone, so the figures split into model inference
//! and everything else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beacon_config::{Config, Source};
use beacon_testkit::{FakeDiscord, FakeOptions, GuildSpec, MemberSpec};

const DOCS: &[(&str, &str)] = &[
    (
        "refunds.md",
        "# Refunds\n\nYou can get a refund within 14 days of purchase. Open the billing page, choose the order and press Request refund.\n",
    ),
    (
        "account.md",
        "# Account\n\n## Password reset\n\nTo reset your password, click Forgot password on the login screen.\n\n## Two-factor authentication\n\nEnable two-factor authentication under Settings, Security.\n",
    ),
    ("shipping.md", "# Shipping\n\nOrders ship within two business days. Tracking links arrive by e-mail.\n"),
];

const QUESTIONS: &[&str] = &[
    "How do I get a refund?",
    "how can I reset my password",
    "where do I enable two-factor authentication?",
    "when will my order ship?",
    "What is the airspeed velocity of an unladen swallow?",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let with_llm = std::env::args().nth(2).is_some_and(|a| a == "llm");
    let llm = if with_llm {
        let llm = beacon_testkit::llm::FakeLlm::start().await?;
        for _ in 0..n + 20 {
            llm.push(
                beacon_testkit::llm::Dialect::OpenAi,
                beacon_testkit::llm::FakeReply::text("Follow the steps in the documentation [1].")
                    .usage(beacon_testkit::llm::FakeUsage::new(400, 12)),
            );
        }
        Some(llm)
    } else {
        None
    };
    let llm_url = llm.as_ref().map(|l| l.openai_base_url()).unwrap_or_default();
    // Discord's rate limits are lifted so that what is measured is Beacon's work per answer, not
    // the bucket waits a burst of 50+ answers a second in one channel would (rightly) get.
    let fake =
        FakeDiscord::start(FakeOptions { route_limit: 1_000_000, global_limit: 1_000_000, ..FakeOptions::default() })
            .await?;
    let guild = fake.create_guild(GuildSpec {
        name: "Bench".into(),
        text_channels: vec!["support".into()],
        members: vec![MemberSpec { user_id: None, username: "asker".into(), roles: vec![] }],
        ..GuildSpec::default()
    });
    let data = tempfile::tempdir()?;
    let data_dir = data.path().display().to_string();
    let (api, gw, token) = (fake.base_url(), fake.gateway_url(), fake.bot_token());
    let app_id = fake.application_id().to_string();
    let log_level = std::env::var("BENCH_LOG_LEVEL").unwrap_or_else(|_| "error".into());
    if log_level != "error" {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(&log_level))
            .with_writer(std::io::stderr)
            .init();
    }
    let model_dir = std::env::var("BEACON_EMBED_MODEL_DIR").unwrap_or_default();
    let rerank_dir = std::env::var("BEACON_RERANK_MODEL_DIR").unwrap_or_default();
    let mut vars = vec![
        ("BEACON_EMBED_MODEL_DIR", model_dir.as_str()),
        ("BEACON_RERANK_MODEL_DIR", rerank_dir.as_str()),
        // Never a download in a benchmark: no folder means BM25 only.
        ("BEACON_EMBED_HUB_URL", "off"),
        ("BEACON_DATA_DIR", data_dir.as_str()),
        ("BEACON_HTTP_ADDR", "127.0.0.1:0"),
        ("BEACON_DISCORD_API_URL", api.as_str()),
        ("BEACON_DISCORD_GATEWAY_URL", gw.as_str()),
        ("BEACON_DISCORD_TOKEN", token.as_str()),
        ("BEACON_DISCORD_APPLICATION_ID", app_id.as_str()),
        ("BEACON_LOG_LEVEL", log_level.as_str()),
    ];
    if with_llm {
        vars.extend([
            ("BEACON_LLM_PROVIDER", "openai-compatible"),
            ("BEACON_LLM_BASE_URL", llm_url.as_str()),
            ("BEACON_LLM_MODEL", "bench-model"),
            ("BEACON_LLM_API_KEY", "bench-key"),
        ]);
    }
    let config = Config::from_sources(None, &Source::from_pairs(vars))?;
    let running = beacon::run::start(Arc::new(config)).await?;
    let app = running.app.clone();
    let docs = tempfile::tempdir()?;
    for (name, body) in DOCS {
        std::fs::write(docs.path().join(name), body)?;
    }
    let kb = beacon::backends::open_knowledge_base(&app.config, &app.store).await?;
    kb.sync(guild.id, &beacon_kb::FolderSource::new(docs.path()), &mut |_| {}).await?;
    let support = guild.channels.iter().find(|c| c.name == "support").map(|c| c.id).unwrap_or_default();
    let asker = guild.members.iter().find(|m| m.username == "asker").map(|m| m.user_id).unwrap_or_default();
    let g = app.guild(guild.id);
    // Answers inline in the channel (no thread), and no rate limit in the way of the benchmark.
    app.settings.set_value(&g, "support.channels", &serde_json::json!([support.to_string()]), 0).await?;
    app.settings.set_value(&g, "support.reply_in_thread", &serde_json::json!(false), 0).await?;
    app.settings.set_value(&g, "support.user_per_minute", &serde_json::json!(60), 0).await?;
    app.settings.set_value(&g, "support.guild_per_minute", &serde_json::json!(1000), 0).await?;
    while fake.connected_shards().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut samples = Vec::with_capacity(n);
    for i in 0..n + 20 {
        // Distinct text per question, so the answer cache is not what is measured.
        let text = format!("{} (#{i})", QUESTIONS[i % QUESTIONS.len()]);
        let started = Instant::now();
        let question = fake.send_message(guild.id, support, asker, &text).await?.to_string();
        // The reply references the question; the fake wakes waiters when it stores a message.
        fake.wait_for_message(support, Duration::from_secs(10), |m| {
            m["message_reference"]["message_id"] == question.as_str()
        })
        .await?;
        if i >= 20 {
            samples.push(started.elapsed().as_secs_f64() * 1e3);
        }
        // A steady pace of one question every ~25 ms (40 answers a second): below Discord's global
        // limit of 50 requests a second per bot, which twilight enforces client-side. At 50 a
        // second every 50th reply waits for the next global window, and that wait, not Beacon's
        // work, would be the p99.
        tokio::time::sleep(Duration::from_millis(22)).await;
        if i % 50 == 49 {
            app.cache
                .delete(&beacon_cache::CacheKey::guild(guild.id, "support", &format!("rate:user:{asker}")))
                .await?;
        }
    }
    samples.sort_by(f64::total_cmp);
    let pct = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let retrieval = match (model_dir.is_empty(), rerank_dir.is_empty()) {
        (true, _) => "BM25 only",
        (false, true) => "default model",
        (false, false) => "default model + reranker",
    };
    let mode = format!("{}, {retrieval}", if with_llm { "fake LLM, zero latency" } else { "no LLM" });
    let max = samples[samples.len() - 1];
    println!(
        "answer overhead, {mode}, {} questions: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        samples.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        max
    );
    let llm_calls = llm.as_ref().map_or(0, |l| l.requests().len());
    // The same questions embedded alone, one at a time, as the answer path does.
    let mut embed = Vec::with_capacity(n);
    if let Some(model) = beacon::backends::embedder(&app.config, None).await {
        for i in 20..n + 20 {
            let text = format!("{} (#{i})", QUESTIONS[i % QUESTIONS.len()]);
            let started = Instant::now();
            model.embed_query(&text)?;
            embed.push(started.elapsed().as_secs_f64() * 1e3);
        }
        embed.sort_by(f64::total_cmp);
    }
    let embed_pct =
        |q: f64| if embed.is_empty() { 0.0 } else { embed[((embed.len() - 1) as f64 * q).round() as usize] };
    if !embed.is_empty() {
        println!(
            "query embedding alone: p50 {:.2} ms  p99 {:.2} ms; answer p50 outside model inference ≈ {:.2} ms",
            embed_pct(0.5),
            embed_pct(0.99),
            pct(0.5) - embed_pct(0.5)
        );
    }
    println!(
        "{}",
        serde_json::json!({"mode": mode, "questions": samples.len(), "p50_ms": pct(0.5), "p90_ms": pct(0.9),
            "p99_ms": pct(0.99), "max_ms": max, "llm_calls": llm_calls,
            "embed_p50_ms": embed_pct(0.5), "embed_p99_ms": embed_pct(0.99)})
    );
    running.shutdown().await;
    Ok(())
}
