//! Observability: `/metrics` of the real binary after traffic exports every name the Grafana
//! dashboard and the Prometheus alert rules use; Beacon's own alert webhook is posted to (the
//! fake Discord's channel webhook, validated against Discord's OpenAPI description) on repeated
//! handler failures and on a gateway that cannot connect, once per interval.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beacon_framework::{Access, CommandCtx, CommandSpec, HandlerError, HandlerResult, Module, async_trait};
use beacon_testkit::{CommandInvocation, Delivery, FakeDiscord, FakeOptions};
use serde_json::json;

use crate::binary::{beacon, free_port, terminate, wait_exit, wait_http};
use crate::harness::*;

/// The metric names a Prometheus expression file uses: `beacon_*` and `process_*` identifiers.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("beacon_") || w.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// Every sample name `/metrics` can produce, from its `# TYPE` lines (a family with no sample
/// yet still declares its type).
fn exported_names(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        let mut parts = line.split_whitespace();
        let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

#[tokio::test]
async fn dashboard_and_alerts_use_only_exported_metrics() {
    let fake = FakeDiscord::start(FakeOptions { openapi_path: openapi(), ..FakeOptions::default() }).await.unwrap();
    let guild = fake.create_guild(guild_spec());
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = beacon()
        .arg("run")
        .env("BEACON_DATA_DIR", dir.path())
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BEACON_DISCORD_TOKEN", fake.bot_token())
        .env("BEACON_DISCORD_API_URL", fake.base_url())
        .env("BEACON_DISCORD_GATEWAY_URL", fake.gateway_url())
        .env("BEACON_DISCORD_PUBLIC_KEY", fake.public_key_hex())
        .env("BEACON_DISCORD_APPLICATION_ID", fake.application_id().to_string())
        .env("BEACON_EMBED_HUB_URL", "off")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_http(&format!("http://127.0.0.1:{port}/health/ready")).await;
    fake.set_interactions_endpoint(&format!("http://127.0.0.1:{port}/interactions"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.connected_shards().is_empty() {
        assert!(Instant::now() < deadline, "bot never connected to the fake gateway");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Traffic: a question over HTTP, one over the gateway, and a forged request.
    let member = |name: &str| guild.members.iter().find(|m| m.username == name).unwrap().user_id;
    // Two members, so neither meets the per-member rate limit.
    for (user, via) in [(member("bob"), Delivery::Http), (member("alice-admin"), Delivery::Gateway)] {
        let h = fake
            .invoke_command(
                CommandInvocation {
                    guild_id: guild.id,
                    channel_id: guild.channels[0].id,
                    user_id: user,
                    name: "ask".into(),
                    options: json!([{"name": "question", "type": 3, "value": "How do refunds work?"}]),
                    member_permissions: None,
                },
                via,
            )
            .await
            .unwrap();
        // A debug build on a busy machine: the first question of a guild may be deferred.
        fake.wait_response(&h, Duration::from_secs(60)).await.unwrap();
    }
    let forged = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/interactions"))
        .header("x-signature-ed25519", "00".repeat(64))
        .header("x-signature-timestamp", "1")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let metrics = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap().text().await.unwrap();
    terminate(&child);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success());

    for sample in [
        "beacon_handler_calls_total{module=\"support\",kind=\"command\",outcome=\"ok\"} ",
        "beacon_handler_duration_seconds_count{module=\"support\",kind=\"command\"} 2",
        "beacon_answers_total{outcome=\"abstained\"} 2",
        // Ours, and the fake's own check of the endpoint with a bad signature (as Discord does).
        "beacon_interactions_total{kind=\"unverified\",outcome=\"bad_signature\"} ",
        "beacon_shard_up{shard=\"0\"} 1",
        "beacon_guilds 1",
        "beacon_jobs_due 0",
    ] {
        assert!(metrics.contains(sample), "{sample} missing from\n{metrics}");
    }
    let exported = exported_names(&metrics);
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let mut checked = 0;
    for file in ["deploy/grafana/beacon.json", "deploy/prometheus/alerts.yml"] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).unwrap();
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{file} uses no Beacon metric");
        let unknown: Vec<&String> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses metrics /metrics does not export: {unknown:?}\nexported: {exported:?}"
        );
        checked += used.len();
    }
    assert!(checked > 20, "the dashboard and the rules cover what an operator watches");
}

/// A module whose command always fails inside (a bug, a database outage): the fault injected.
struct Broken;

#[async_trait]
impl Module for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn description(&self) -> &'static str {
        "Always fails"
    }
    fn commands(&self) -> Vec<CommandSpec> {
        vec![CommandSpec::new("explode", "Fails", Access::Everyone)]
    }
    async fn command(&self, _ctx: CommandCtx) -> HandlerResult {
        Err(HandlerError::internal("injected fault"))
    }
}

fn alert_texts(t: &TestApp, channel: u64) -> Vec<String> {
    t.fake
        .messages(channel)
        .iter()
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .filter(|c| c.contains("Beacon: "))
        .collect()
}

async fn wait_for_alerts(t: &TestApp, channel: u64, n: usize) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        let texts = alert_texts(t, channel);
        if texts.len() >= n || Instant::now() > deadline {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn repeated_handler_failures_post_one_alert_to_the_webhook() {
    let fake_channel_webhook = |t: &TestApp| t.fake.create_webhook(t.channel("mod-log"));
    // The webhook belongs to the fake, which must exist first: start once to create it, then
    // start Beacon with it.
    let probe = TestApp::spawn_with(Options { gateway: false, ..Options::default() }).await;
    let url = fake_channel_webhook(&probe);
    let mut t = probe;
    let env = vec![
        ("BEACON_ALERT_WEBHOOK_URL".to_owned(), url),
        ("BEACON_ALERT_HANDLER_FAILURES".to_owned(), "3".to_owned()),
    ];
    restart_with(&mut t, &env, vec![Arc::new(Broken)]).await;
    let log = t.channel("mod-log");
    for _ in 0..2 {
        let out = t.command(t.member("bob"), "explode", json!([]), Delivery::Http).await;
        assert!(text_of(&out).contains("Something went wrong"), "{}", text_of(&out));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alert_texts(&t, log).is_empty(), "two failures are below the threshold");
    t.command(t.member("bob"), "explode", json!([]), Delivery::Http).await;
    let alerts = wait_for_alerts(&t, log, 1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("3 handler failures") && alerts[0].contains("broken"), "{}", alerts[0]);
    // Three more within the interval: no second post (rate-limited).
    for _ in 0..3 {
        t.command(t.member("bob"), "explode", json!([]), Delivery::Http).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(alert_texts(&t, log).len(), 1, "one alert per BEACON_ALERT_MIN_INTERVAL");
    let app_id = t.fake.application_id().to_string();
    let posts: Vec<_> =
        t.fake.requests().into_iter().filter(|r| r.path.contains("/webhooks/") && !r.path.contains(&app_id)).collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body["allowed_mentions"]["parse"], json!([]), "{:?}", posts[0].body);
    let metrics = t.app().metrics.render();
    assert!(metrics.contains("beacon_alerts_sent_total{kind=\"handler_failures\"} 1"), "{metrics}");
    assert!(metrics.contains("beacon_handler_errors_total{module=\"broken\"} 6"), "{metrics}");
    t.stop().await;
}

#[tokio::test]
async fn a_gateway_that_cannot_connect_is_alerted() {
    let mut t = TestApp::spawn_with(Options { gateway: false, ..Options::default() }).await;
    let url = t.fake.create_webhook(t.channel("mod-log"));
    // Nothing listens where the gateway is said to be.
    let dead = format!("ws://127.0.0.1:{}", free_port());
    let env = vec![
        ("BEACON_ALERT_WEBHOOK_URL".to_owned(), url),
        ("BEACON_ALERT_GATEWAY_AFTER".to_owned(), "1s".to_owned()),
        ("BEACON_DISCORD_GATEWAY_URL".to_owned(), dead),
        ("BEACON_DISCORD_GATEWAY_ENABLED".to_owned(), "true".to_owned()),
    ];
    restart_with(&mut t, &env, Vec::new()).await;
    let alerts = wait_for_alerts(&t, t.channel("mod-log"), 1).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(alerts[0].contains("gateway") && alerts[0].contains("shards connected"), "{}", alerts[0]);
    t.stop().await;
}

/// Stops the app and starts it again on the same data folder and fake with `env` and `modules`.
async fn restart_with(t: &mut TestApp, env: &[(String, String)], modules: Vec<Arc<dyn Module>>) {
    if let Some(running) = t.running.take() {
        running.shutdown().await;
    }
    let gateway = env.iter().any(|(k, v)| k == "BEACON_DISCORD_GATEWAY_ENABLED" && v == "true");
    let config = test_config_with(&t.fake, &t._data, true, gateway, env);
    let running = beacon::run::start_with(Arc::new(config), modules).await.expect("beacon restarts");
    running.app.sync_commands(None).await.expect("commands registered");
    t.fake.set_interactions_endpoint(&format!("http://{}/interactions", running.addr));
    t.running = Some(running);
}
