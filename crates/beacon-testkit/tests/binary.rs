//! The `fake-discord` binary: seeds guilds, lists them, serves REST and the gateway.

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn binary_seeds_and_lists_guilds() {
    beacon_testkit::install_tls_provider();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-discord"))
        .args(["--port", &port.to_string(), "--seed-guilds", "3"])
        .env_remove("BEACON_DISCORD_OPENAPI")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert_eq!(line, format!("fake-discord listening on http://127.0.0.1:{port}"));

    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let guilds: Value = http.get(format!("{base}/_fake/guilds")).send().await.unwrap().json().await.unwrap();
    let guilds = guilds.as_array().unwrap();
    assert_eq!(guilds.len(), 3);
    for g in guilds {
        assert!(g["id"].as_str().unwrap().parse::<u64>().is_ok());
        assert!(
            g["channels"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["type"] == 0 && c["name"].is_string() && c["id"].is_string())
        );
        assert!(g["roles"].as_array().unwrap().iter().any(|r| r["name"] == "member"));
        assert!(g["members"].as_array().unwrap().len() >= 2);
    }

    // Out-of-process control: credentials, a member message, REST with auth.
    let info: Value = http.get(format!("{base}/_fake/info")).send().await.unwrap().json().await.unwrap();
    let token = info["bot_token"].as_str().unwrap();
    let g = &guilds[0];
    let channel = g["channels"][0]["id"].as_str().unwrap();
    let member = g["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["username"].as_str().unwrap().starts_with("member"))
        .unwrap();
    let sent = http
        .post(format!("{base}/_fake/messages"))
        .json(&json!({"guild_id": g["id"], "channel_id": channel, "user_id": member["user_id"], "content": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 200);
    let msgs: Value = http
        .get(format!("{base}/api/v10/channels/{channel}/messages"))
        .header("authorization", format!("Bot {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(msgs[0]["content"], "hello");
    let unauth = http.get(format!("{base}/api/v10/channels/{channel}/messages")).send().await.unwrap();
    assert_eq!(unauth.status(), 401);
    let violations: Value = http.get(format!("{base}/_fake/violations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(violations.as_array().unwrap().len(), 1);
    child.kill().await.unwrap();
}

/// `guild_ids` and `guild` (what the binary's message stream picks from) agree with `guilds`.
#[tokio::test]
async fn guild_ids_and_guild_agree_with_guilds() {
    let fake = beacon_testkit::FakeDiscord::start(beacon_testkit::FakeOptions::default()).await.unwrap();
    for n in 0..3 {
        fake.create_guild(beacon_testkit::GuildSpec { name: format!("g{n}"), ..Default::default() });
    }
    let all = fake.guilds();
    assert_eq!(fake.guild_ids(), all.iter().map(|g| g.id).collect::<Vec<_>>());
    for g in &all {
        let one = fake.guild(g.id).unwrap();
        assert_eq!((one.id, one.name.as_str(), one.channels.len()), (g.id, g.name.as_str(), g.channels.len()));
    }
    assert!(fake.guild(1).is_none());
    fake.shutdown().await;
}

/// `--load-messages-per-sec` posts messages from seeded members into seeded text channels.
#[tokio::test]
async fn binary_streams_load_messages_into_seeded_guilds() {
    beacon_testkit::install_tls_provider();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-discord"))
        .args(["--port", &port.to_string(), "--seed-guilds", "2", "--load-messages-per-sec", "100"])
        .env_remove("BEACON_DISCORD_OPENAPI")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let info: Value = http.get(format!("{base}/_fake/info")).send().await.unwrap().json().await.unwrap();
    let token = info["bot_token"].as_str().unwrap().to_owned();
    let guilds: Value = http.get(format!("{base}/_fake/guilds")).send().await.unwrap().json().await.unwrap();
    let channels: Vec<String> = guilds
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["channels"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()))
        .collect();
    let mut seen = 0;
    for _ in 0..100 {
        seen = 0;
        for c in &channels {
            let msgs: Value = http
                .get(format!("{base}/api/v10/channels/{c}/messages"))
                .header("authorization", format!("Bot {token}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for m in msgs.as_array().unwrap() {
                assert!(m["content"].as_str().unwrap().starts_with("synthetic message "));
                seen += 1;
            }
        }
        if seen >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(seen >= 5, "only {seen} load messages arrived");
    child.kill().await.unwrap();
}
