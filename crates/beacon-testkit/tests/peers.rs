//! Clients other than Beacon against the fake: a discord.py bot and a discord.js bot, each written
//! the way its library's docs show, connect, see their guild, read a member's message and answer
//! it through REST that passes validation.
//!
//! The peers come from `peers/requirements.txt` (pip) and `peers/package.json` (npm);
//! scripts/test.sh installs them and sets `BEACON_TEST_REQUIRE_PEERS=1`, which turns a missing
//! peer into a failure instead of a skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use beacon_testkit::{FakeDiscord, FakeOptions, GuildSpec, MemberSpec};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn peers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers")
}

fn available(program: &str, check: &[&str], what: &str) -> bool {
    let ok = std::process::Command::new(program)
        .args(check)
        .current_dir(peers_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("BEACON_TEST_REQUIRE_PEERS").as_deref() != Ok("1"),
            "BEACON_TEST_REQUIRE_PEERS=1 but {what} is not installed (see crates/beacon-testkit/peers)"
        );
        eprintln!("skipping: {what} is not installed");
    }
    ok
}

async fn run_peer(program: &str, script: &str, name: &str) {
    let fake = FakeDiscord::start(FakeOptions {
        openapi_path: std::env::var_os("BEACON_DISCORD_OPENAPI").map(Into::into),
        ..FakeOptions::default()
    })
    .await
    .expect("fake starts");
    let guild = fake.create_guild(GuildSpec {
        name: "Peers".into(),
        text_channels: vec!["general".into()],
        members: vec![MemberSpec { user_id: None, username: "member".into(), roles: vec![] }],
        ..GuildSpec::default()
    });
    let mut child = Command::new(program)
        .arg(script)
        .current_dir(peers_dir())
        .env("FAKE_URL", fake.base_url())
        .env("FAKE_TOKEN", fake.bot_token())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("peer starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(n) = line.strip_prefix("READY ") {
                return Some(n.trim().to_owned());
            }
        }
        None
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never became ready"));
    assert_eq!(ready.as_deref(), Some("1"), "{name} should see one guild");

    let channel = guild.channels.iter().find(|c| c.name == "general").expect("channel").id;
    let member = guild.members.iter().find(|m| m.username == "member").expect("member").user_id;
    fake.send_message(guild.id, channel, member, "ping").await.expect("message");
    let expected = format!("pong from {name}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answered = fake.requests().into_iter().any(|r| {
            r.method == "POST"
                && r.path.contains(&format!("/channels/{channel}/messages"))
                && r.status == 200
                && r.body["content"] == expected.as_str()
        });
        if answered {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} never answered: {:#?}", fake.requests());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.assert_no_violations();
    let _ = child.kill().await;
}

#[tokio::test]
async fn a_discord_py_bot_works_against_the_fake() {
    if available("python3", &["-c", "import discord"], "discord.py") {
        run_peer("python3", "discordpy_bot.py", "discord.py").await;
    }
}

#[tokio::test]
async fn a_discord_js_bot_works_against_the_fake() {
    if available("node", &["-e", "require('discord.js')"], "discord.js") {
        run_peer("node", "discordjs_bot.js", "discord.js").await;
    }
}
