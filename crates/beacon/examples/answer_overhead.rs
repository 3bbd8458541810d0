//! Support-answer overhead: a member's question message in → Beacon's reply seen by Discord,
//! with no LLM. Runs Beacon in-process against the testkit's fake Discord (gateway + REST on
//! loopback), answers from a small knowledge base, one question at a time, and prints p50/p99.
//!
//! ```sh
//! cargo run --release -p beacon --example answer_overhead -- 500
//! ```
//!
//! The fake's rate limits are lifted: a steady stream in one channel would otherwise measure
//! Discord's buckets (which Beacon honours) rather than Beacon.

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
    let config = Config::from_sources(
        None,
        &Source::from_pairs([
            ("BEACON_DATA_DIR", data_dir.as_str()),
            ("BEACON_HTTP_ADDR", "127.0.0.1:0"),
            ("BEACON_DISCORD_API_URL", api.as_str()),
            ("BEACON_DISCORD_GATEWAY_URL", gw.as_str()),
            ("BEACON_DISCORD_TOKEN", token.as_str()),
            ("BEACON_DISCORD_APPLICATION_ID", app_id.as_str()),
            ("BEACON_LOG_LEVEL", "error"),
        ]),
    )?;
    let running = beacon::run::start(Arc::new(config)).await?;
    let app = running.app.clone();
    let docs = tempfile::tempdir()?;
    for (name, body) in DOCS {
        std::fs::write(docs.path().join(name), body)?;
    }
    let kb = beacon::run::open_knowledge_base(&app.config, &app.store).await?;
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
        // A steady pace: one question every ~20 ms.
        tokio::time::sleep(Duration::from_millis(15)).await;
        if i % 50 == 49 {
            app.cache
                .delete(&beacon_cache::CacheKey::guild(guild.id, "support", &format!("rate:user:{asker}")))
                .await?;
        }
    }
    samples.sort_by(f64::total_cmp);
    let pct = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    println!(
        "answer overhead, no LLM, {} questions: p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        samples.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        samples[samples.len() - 1]
    );
    running.shutdown().await;
    Ok(())
}
