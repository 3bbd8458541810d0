//! The scale-out roles in one test process: `web` (interactions), `gateway` (shards → Redis
//! Streams) and two `worker`s (streams → modules) on PostgreSQL and Redis, against the fake
//! Discord. Every question is answered exactly once while a worker leaves mid-flood and the
//! gateway restarts and resumes its session. (The fault suite, `scripts/fault-suite.sh`, does the
//! same with real processes and kill -9.)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use beacon::run::{Role, Running, start_role};
use beacon_testkit::{Delivery, FakeDiscord, FakeOptions};
use serde_json::json;

use crate::harness::{guild_spec, openapi, opt_str, sub, test_config_with};

const DOCS: &[(&str, &str)] = &[
    (
        "refunds.md",
        "# Refunds\n\nYou can get a refund within 14 days of purchase. Open the billing page and press Request refund.\n",
    ),
    (
        "account.md",
        "# Account\n\n## Password reset\n\nTo reset your password, click Forgot password on the login screen.\n\n## Two-factor authentication\n\nEnable two-factor authentication under Settings, Security.\n",
    ),
];

const QUESTIONS: &[(&str, &str)] = &[
    ("how do I get a refund?", "14 days"),
    ("how do I reset my password?", "Forgot password"),
    ("how do I enable two-factor authentication?", "Settings, Security"),
];

/// Answers on the fake, per question message id (a reply names the question it answers).
fn replies(fake: &FakeDiscord, channel: u64) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for m in fake.messages(channel) {
        if let Some(id) = m["message_reference"]["message_id"].as_str().and_then(|s| s.parse().ok()) {
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

async fn until_answered(fake: &FakeDiscord, channel: u64, questions: &[u64]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = replies(fake, channel);
        if questions.iter().all(|q| r.contains_key(q)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "unanswered: {:?}",
            questions.iter().filter(|q| !r.contains_key(q)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn roles_answer_every_question_once_through_a_worker_leaving_and_a_gateway_restart() {
    let Some(redis) = beacon_testkit::services::redis_url() else { return };
    let Some(db) = beacon_testkit::services::ScratchDatabase::create().await else { return };
    let fake = FakeDiscord::start(FakeOptions { openapi_path: openapi(), ..FakeOptions::default() })
        .await
        .expect("fake discord starts");
    let guild = fake.create_guild(guild_spec());
    let prefix = format!("beacon-e2e-{:012x}", fastrand_u64());
    let env: Vec<(String, String)> = vec![
        ("BEACON_DATABASE_URL".into(), db.url.clone()),
        ("BEACON_REDIS_URL".into(), redis.clone()),
        ("BEACON_SCALE_KEY_PREFIX".into(), prefix.clone()),
        ("BEACON_SCALE_PARTITIONS".into(), "4".into()),
        ("BEACON_SCALE_CLAIM_IDLE".into(), "1s".into()),
    ];
    let dirs: Vec<tempfile::TempDir> = (0..5).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let config = |i: usize| Arc::new(test_config_with(&fake, &dirs[i], true, true, &env));
    let start = |i: usize, role: Role, name: &str| start_role(config(i), role, name.to_owned(), Vec::new());

    // web: interactions. The owner points support at the knowledge base and lifts the rate limits.
    let web = start(0, Role::Web, "web-0").await.expect("web starts");
    web.app.sync_commands(None).await.expect("commands registered");
    fake.set_interactions_endpoint(&format!("http://{}/interactions", web.addr));
    let gateway = start(1, Role::Gateway { shards: None, total: None }, "gateway-0").await.expect("gateway starts");
    let workers: Vec<Running> = vec![
        start(2, Role::Worker, "worker-a").await.expect("worker starts"),
        start(3, Role::Worker, "worker-b").await.expect("worker starts"),
    ];
    // The guild is registered by a worker from the gateway's GUILD_CREATE.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while web.app.guild(guild.id).get().await.expect("guild row").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the guild was never registered through the streams");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let channel = |name: &str| guild.channels.iter().find(|c| c.name == name).map(|c| c.id).expect("channel");
    let general = channel("general");
    for (key, value) in [("support.user_per_minute", "60"), ("support.guild_per_minute", "1000")] {
        let invocation = beacon_testkit::CommandInvocation {
            guild_id: guild.id,
            channel_id: general,
            user_id: guild.owner_id,
            name: "config".into(),
            options: sub("set", json!([opt_str("key", key), opt_str("value", value)])),
            member_permissions: None,
        };
        let handle = fake.invoke_command(invocation, Delivery::Http).await.expect("config set");
        let out = fake.wait_response(&handle, Duration::from_secs(10)).await.expect("an answer");
        assert!(out.data.to_string().contains(value), "{out:?}");
    }
    let folder = tempfile::tempdir().expect("tempdir");
    for (name, body) in DOCS {
        std::fs::write(folder.path().join(name), body).expect("doc written");
    }
    let kb = beacon::backends::open_knowledge_base(&web.app.config, &web.app.store).await.expect("kb");
    kb.sync(guild.id, &beacon_kb::FolderSource::new(folder.path()), &mut |_| {}).await.expect("kb synced");

    let bob = guild.members.iter().find(|m| m.username == "bob").map(|m| m.user_id).expect("bob");
    let bot = fake.application_id();
    let mut asked = Vec::new();
    let question = |i: usize| ask(&fake, guild.id, general, bob, bot, i);

    // A flood; one worker leaves in the middle of it (its partitions go to the other).
    for i in 0..12 {
        asked.push(question(i).await.expect("message sent"));
    }
    let mut workers = workers.into_iter();
    let leaving = workers.next().expect("two workers");
    let staying = workers.next().expect("two workers");
    leaving.shutdown().await;
    for i in 12..24 {
        asked.push(question(i).await.expect("message sent"));
    }
    until_answered(&fake, general, &asked).await;

    // The gateway restarts: it closed its session resumably and saved it in Redis, so the next
    // one resumes (no new identify) and gets what was sent meanwhile.
    let identifies = fake.identify_count();
    let resumes = fake.resume_count();
    gateway.shutdown().await;
    for i in 24..30 {
        asked.push(question(i).await.expect("message sent"));
    }
    let gateway = start(4, Role::Gateway { shards: None, total: None }, "gateway-1").await.expect("gateway restarts");
    until_answered(&fake, general, &asked).await;
    assert_eq!(fake.identify_count(), identifies, "the restarted gateway resumed instead of identifying");
    assert!(fake.resume_count() > resumes, "the session was resumed");

    // Exactly once: no question twice, and every answer holds what its question asked for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let counts = replies(&fake, general);
    for (i, q) in asked.iter().enumerate() {
        assert_eq!(counts.get(q), Some(&1), "question #{i} answered {:?} times", counts.get(q));
    }
    for m in fake.messages(general) {
        let Some(q) = m["message_reference"]["message_id"].as_str().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let i = asked.iter().position(|a| *a == q).expect("a reply to a question asked");
        let (_, needle) = QUESTIONS[i % QUESTIONS.len()];
        assert!(m["content"].as_str().unwrap_or("").contains(needle), "question #{i}: {m}");
    }

    // /status and the metrics of any process see the gateway's shards and the streams.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while staying.app.shards.connected() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the worker never saw the gateway's shard status");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let checks = web.app.checks().await;
    let streams = checks.iter().find(|c| c.name == "event streams").expect("an event streams check");
    assert!(streams.ok && streams.detail.contains("0 dead letters"), "{streams:?}");

    gateway.shutdown().await;
    staying.shutdown().await;
    web.shutdown().await;
    fake.assert_no_violations();
    db.drop_database().await;
}

/// Mentions the bot with question `i` (the three questions in turn); returns the message id.
async fn ask(
    fake: &FakeDiscord,
    guild: u64,
    channel: u64,
    member: u64,
    bot: u64,
    i: usize,
) -> Result<u64, beacon_testkit::Error> {
    let (q, _) = QUESTIONS[i % QUESTIONS.len()];
    fake.send_message(guild, channel, member, &format!("<@{bot}> {q} (#{i})")).await
}

fn fastrand_u64() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id())
}
