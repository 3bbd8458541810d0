//! The signed HTTP interactions endpoint, driven with our own key pair so that bad and stale
//! signatures can be produced.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

use crate::harness::*;

struct Endpoint {
    url: String,
    key: SigningKey,
    client: reqwest::Client,
}

impl Endpoint {
    async fn post(&self, body: &Value, timestamp: u64, tamper: bool) -> reqwest::Response {
        let body = serde_json::to_vec(body).unwrap();
        let ts = timestamp.to_string();
        let mut msg = ts.clone().into_bytes();
        msg.extend_from_slice(&body);
        let mut sig = self.key.sign(&msg).to_bytes();
        if tamper {
            sig[0] ^= 1;
        }
        self.client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", hex::encode(sig))
            .header("x-signature-timestamp", ts)
            .body(body)
            .send()
            .await
            .expect("request")
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn interaction(id: u64, kind: u8, guild: u64, user: u64) -> Value {
    json!({
        "id": id.to_string(),
        "application_id": "1000",
        "type": kind,
        "token": format!("tok-{id}"),
        "version": 1,
        "guild_id": guild.to_string(),
        "channel_id": "42",
        "channel": { "id": "42", "type": 0 },
        "locale": "en-US",
        "guild_locale": "en-US",
        "app_permissions": "0",
        "entitlements": [],
        "authorizing_integration_owners": {},
        "context": 0,
        "attachment_size_limit": 8388608,
        "member": {
            "user": { "id": user.to_string(), "username": "someone", "discriminator": "0", "global_name": null, "avatar": null },
            "roles": [], "joined_at": "2024-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false, "flags": 0,
            "permissions": "0"
        },
        "data": { "id": "77", "name": "status", "type": 1, "options": [] }
    })
}

async fn endpoint_app() -> (TestApp, Endpoint) {
    // A Beacon whose public key is ours, HTTP-only (no token): the endpoint must work on its own.
    let key = SigningKey::from_bytes(&[7u8; 32]);
    let fake = beacon_testkit::FakeDiscord::start(beacon_testkit::FakeOptions::default()).await.unwrap();
    let guild = fake.create_guild(guild_spec());
    let data = tempfile::tempdir().unwrap();
    let mut config = test_config(&fake, &data, false, false);
    config.discord.public_key = Some(hex::encode(key.verifying_key().to_bytes()));
    let running = beacon::run::start(Arc::new(config)).await.unwrap();
    let url = format!("http://{}/interactions", running.addr);
    let t = TestApp { fake, running: Some(running), guild, _data: data };
    (t, Endpoint { url, key, client: reqwest::Client::new() })
}

#[tokio::test]
async fn ping_gets_pong() {
    let (t, ep) = endpoint_app().await;
    let resp = ep
        .post(&json!({ "id": "1", "application_id": "1000", "type": 1, "token": "t", "version": 1 }), now(), false)
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({ "type": 1 }));
    t.stop().await;
}

#[tokio::test]
async fn bad_signature_and_stale_timestamp_are_401() {
    let (t, ep) = endpoint_app().await;
    let ping = json!({ "id": "1", "application_id": "1000", "type": 1, "token": "t", "version": 1 });
    assert_eq!(ep.post(&ping, now(), true).await.status(), 401, "tampered signature");
    assert_eq!(ep.post(&ping, now() - 301, false).await.status(), 401, "older than 5 minutes");
    let no_headers = ep.client.post(&ep.url).body("{}").send().await.unwrap();
    assert_eq!(no_headers.status(), 401, "missing headers");
    t.stop().await;
}

#[tokio::test]
async fn signed_command_is_answered_once_and_registers_the_guild() {
    let (t, ep) = endpoint_app().await;
    let guild_id = 555_000_000_000_000_001;
    let body = interaction(900_000_000_000_000_001, 2, guild_id, 12345);
    let resp = ep.post(&body, now(), false).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["type"], 4, "{answer}");
    assert_eq!(answer["data"]["flags"], 64, "{answer}");
    assert_eq!(answer["data"]["embeds"][0]["title"], "Beacon status");
    // A guild first seen through an interaction is registered.
    let record = t.app().store.guild(guild_id).get().await.unwrap();
    assert!(record.is_some(), "guild registered from an HTTP interaction");
    // The same interaction replayed is not handled again.
    let replay = ep.post(&body, now(), false).await;
    assert_eq!(replay.status(), 409);
    // Both show in the metrics.
    let metrics = reqwest::get(format!("http://{}/metrics", t.addr())).await.unwrap();
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("beacon_interactions_total{kind=\"command\",outcome=\"handled\"} 1"), "{metrics}");
    assert!(metrics.contains("beacon_interactions_total{kind=\"command\",outcome=\"duplicate\"} 1"), "{metrics}");
    t.stop().await;
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_rejected() {
    let (t, ep) = endpoint_app().await;
    let big = json!({ "type": 2, "pad": "x".repeat(beacon_web::BODY_LIMIT + 10) });
    assert_eq!(ep.post(&big, now(), false).await.status(), 413);
    let odd = json!({ "type": "nonsense" });
    assert_eq!(ep.post(&odd, now(), false).await.status(), 400);
    t.stop().await;
}

#[tokio::test]
async fn health_endpoints_report_dependencies() {
    let (t, _ep) = endpoint_app().await;
    let base = format!("http://{}", t.addr());
    let live: Value = reqwest::get(format!("{base}/health/live")).await.unwrap().json().await.unwrap();
    assert_eq!(live["status"], "ok");
    let ready = reqwest::get(format!("{base}/health/ready")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    let names: Vec<&str> = ready["checks"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(names, vec!["database", "cache", "transcripts"]);
    // The ticket desk's transcript store (the local folder here) answers its probe.
    let transcripts = &ready["checks"][2];
    assert_eq!(transcripts["ok"], true, "{transcripts}");
    assert!(transcripts["detail"].as_str().is_some_and(|d| d.starts_with("file://")), "{transcripts}");
    t.stop().await;
}
