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
