//! The real `beacon` binary: flags, exit codes, start-up without a token, and graceful shutdown.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use beacon_testkit::{Delivery, FakeDiscord, FakeOptions, Fault, FaultKind};
use serde_json::json;

use crate::harness::*;

pub(crate) fn beacon() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    // Only what a test sets reaches the binary: no stray BEACON_* from the developer's shell.
    for (key, _) in std::env::vars() {
        if key.starts_with("BEACON_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub(crate) fn terminate(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// Waits for exit, returning how long it took; kills the process if it overstays `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("beacon did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub(crate) async fn wait_http(url: &str) {
    beacon_testkit::install_tls_provider();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(url).await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered");
}

#[test]
fn version_flag_prints_the_version() {
    let out = beacon().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("beacon {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = beacon()
        .arg("run")
        .env("BEACON_DATA_DIR", dir.path())
        .env("BEACON_HTTP_ADDR", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BEACON_HTTP_ADDR"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one clear line: {stderr}");
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = beacon().arg("migrate").env("BEACON_DATA_DIR", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("beacon.db").exists());
}

/// `beacon guild purge`: refused without confirmation when nobody can answer, then, with
/// `--yes`, every row and file of the guild goes and the operator is told what.
#[test]
fn guild_purge_asks_then_removes_everything_of_the_guild() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(docs.join("refunds.md"), "# Refunds\n\nRefunds are issued within 14 days.\n").unwrap();
    let run =
        |args: &[&str]| beacon().args(args).env("BEACON_DATA_DIR", dir.path()).stdin(Stdio::null()).output().unwrap();
    let out = run(&["ingest", "--guild", "42", docs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let index = dir.path().join("kb-index/guild-42.kbi");
    assert!(index.exists());

    let out = run(&["guild", "purge", "42"]);
    assert!(!out.status.success(), "no confirmation, no purge");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(index.exists(), "nothing was deleted");

    let out = run(&["guild", "purge", "42", "--yes"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("guild 42 purged"), "{stdout}");
    assert!(stdout.contains("kb_chunks: 1 row(s)") && stdout.contains("kb_documents: 1 row(s)"), "{stdout}");
    assert!(stdout.contains("search index file removed"), "{stdout}");
    assert!(!index.exists());
    let out = run(&["ask", "--guild", "42", "How long do refunds take?"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("14 days"), "the knowledge base of guild 42 is empty");
}

/// `beacon invite` asks for exactly the permissions the modules declare.
#[test]
fn invite_asks_only_for_what_the_modules_need() {
    let dir = tempfile::tempdir().unwrap();
    let out = beacon().args(["invite", "--client-id", "1234"]).env("BEACON_DATA_DIR", dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8_lossy(&out.stdout);
    assert!(
        url.starts_with(
            "https://discord.com/oauth2/authorize?client_id=1234&scope=bot%20applications.commands&permissions="
        ),
        "{url}"
    );
    let bits: u64 = url.trim().rsplit('=').next().unwrap().parse().unwrap();
    const ADMINISTRATOR: u64 = 1 << 3;
    assert_eq!(bits & ADMINISTRATOR, 0, "never administrator");
    const SEND_MESSAGES: u64 = 1 << 11;
    assert_ne!(bits & SEND_MESSAGES, 0);
    let out = beacon().arg("invite").env("BEACON_DATA_DIR", dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("BEACON_DISCORD_APPLICATION_ID"));
}

#[tokio::test]
async fn runs_without_a_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = beacon()
        .arg("run")
        .env("BEACON_DATA_DIR", dir.path())
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_http(&format!("http://127.0.0.1:{port}/health/ready")).await;
    terminate(&child);
    let (status, took) = wait_exit(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10));
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    let gateway_lines: Vec<&str> = logs.lines().filter(|l| l.contains("gateway not connected")).collect();
    assert_eq!(gateway_lines.len(), 1, "{logs}");
    assert!(gateway_lines[0].starts_with('{'), "JSON logs by default: {logs}");
}

#[tokio::test]
async fn sigterm_mid_handler_lets_the_handler_finish() {
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
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_http(&format!("http://127.0.0.1:{port}/health/ready")).await;
    fake.set_interactions_endpoint(&format!("http://127.0.0.1:{port}/interactions"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.connected_shards().is_empty() {
        assert!(Instant::now() < deadline, "bot never connected to the fake gateway");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let owner = guild.owner_id;
    let log = guild.channels.iter().find(|c| c.name == "mod-log").unwrap().id;
    let invoke = |name: &str, options: serde_json::Value| beacon_testkit::CommandInvocation {
        guild_id: guild.id,
        channel_id: guild.channels[0].id,
        user_id: owner,
        name: name.into(),
        options,
        member_permissions: None,
    };
    // Wait until the guild (and its owner) is registered, then point the log channel somewhere slow.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let h = fake
            .invoke_command(
                invoke(
                    "config",
                    sub("set", json!([opt_str("key", "core.log_channel"), opt_str("value", &log.to_string())])),
                ),
                Delivery::Http,
            )
            .await
            .unwrap();
        let out = fake.wait_response(&h, WAIT).await.unwrap();
        if text_of(&out).contains("changed") {
            break;
        }
        assert!(Instant::now() < deadline, "never authorized: {out:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fake.inject(Fault {
        method: Some("POST".into()),
        path_contains: format!("/channels/{log}/messages"),
        kind: FaultKind::Delay(Duration::from_secs(3)),
        times: 1,
    });
    // This handler now takes > 3 s: it is deferred, then finishes while the process shuts down.
    let staff = guild.roles.iter().find(|r| r.name == "staff").unwrap().id;
    let invocation =
        invoke("config", sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", &staff.to_string())])));
    let fake2 = fake.clone();
    let pending = tokio::spawn(async move {
        let h = fake2.invoke_command(invocation, Delivery::Http).await.unwrap();
        fake2.wait_response(&h, Duration::from_secs(15)).await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    terminate(&child);
    let out = pending.await.unwrap();
    assert_eq!(out.kind, 5, "a slow handler is deferred: {out:?}");
    assert!(text_of(&out).contains("core.staff_roles"), "the deferred answer arrives: {out:?}");
    let (status, took, mut child) = tokio::task::spawn_blocking(move || {
        let (status, took) = wait_exit(&mut child, Duration::from_secs(10));
        (status, took, child)
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(10));
    let mut logs = String::new();
    child.stderr.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(!logs.contains(&fake.bot_token()), "the token leaked into the logs");
    assert!(logs.contains("\"interaction_id\""), "logs carry interaction ids: {logs}");
    fake.assert_no_violations();
}

// Multi-threaded: the fake Discord must keep serving while this thread waits for the binary.
#[tokio::test(flavor = "multi_thread")]
async fn commands_sync_subcommand_registers_guild_commands() {
    let fake = FakeDiscord::start(FakeOptions { openapi_path: openapi(), ..FakeOptions::default() }).await.unwrap();
    let guild = fake.create_guild(guild_spec());
    let dir = tempfile::tempdir().unwrap();
    let out = beacon()
        .args(["commands", "sync", "--guild", &guild.id.to_string()])
        .env("BEACON_DATA_DIR", dir.path())
        .env("BEACON_DISCORD_TOKEN", fake.bot_token())
        .env("BEACON_DISCORD_API_URL", fake.base_url())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("to guild {}", guild.id)));
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT" && r.path.contains(&format!("/guilds/{}/commands", guild.id)))
        .expect("bulk overwrite");
    assert_eq!(put.status, 200, "{put:?}");
    let names: Vec<&str> = put.body.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    for name in ["config", "access", "status", "ask", "faq", "ticket"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    // Without a token it explains what is missing.
    let out = beacon().args(["commands", "sync"]).env("BEACON_DATA_DIR", dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("BEACON_DISCORD_TOKEN"));
    fake.assert_no_violations();
}

#[test]
fn eval_reports_retrieval_and_abstention_as_json() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../beacon-kb/tests/fixtures/mini_beir");
    let dir = tempfile::tempdir().unwrap();
    let negatives = dir.path().join("negatives.jsonl");
    std::fs::write(
        &negatives,
        "{\"text\": \"What is the airspeed velocity of an unladen swallow?\"}\n\"Who won the 1966 World Cup?\"\n",
    )
    .unwrap();
    let out = beacon()
        .args(["eval", fixture, "--json", "--negatives"])
        .arg(&negatives)
        .env("BEACON_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    for key in [
        "hit_at_5",
        "recall_at_5",
        "mrr_at_10",
        "ndcg_at_10",
        "query_p50_ms",
        "query_p99_ms",
        "queries",
        "answered_rate",
        "abstain_rate",
    ] {
        assert!(last.get(key).is_some(), "{key} missing: {last}");
    }
    assert_eq!(last["negatives"], 2);
    assert_eq!(last["abstain_rate"], 1.0, "nothing in the fixture is about swallows or football: {last}");
}

/// Runs `beacon run` against `fake` with `token` until it exits by itself (at most 20 s);
/// returns its status and everything it logged, and whether `/health/ready` said unavailable
/// while it ran.
fn run_until_it_exits(fake: &FakeDiscord, token: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = beacon()
        .arg("run")
        .env("BEACON_DATA_DIR", dir.path())
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("BEACON_DISCORD_TOKEN", token)
        .env("BEACON_DISCORD_API_URL", fake.base_url())
        .env("BEACON_DISCORD_GATEWAY_URL", fake.gateway_url())
        .env("BEACON_EMBED_HUB_URL", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("beacon kept running although Discord refused it");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
    (status, out)
}

/// Discord closes with 4014 when Message Content is not enabled for the bot: Beacon says exactly
/// what to enable where, and exits non-zero instead of staying "ready" without a gateway.
#[tokio::test]
async fn disallowed_intents_stop_beacon_with_the_fix() {
    const MESSAGE_CONTENT: u64 = 1 << 15;
    let fake =
        FakeDiscord::start(FakeOptions { denied_intents: MESSAGE_CONTENT, ..FakeOptions::default() }).await.unwrap();
    let token = fake.bot_token();
    let (status, out) = tokio::task::spawn_blocking(move || run_until_it_exits(&fake, &token)).await.unwrap();
    assert!(!status.success(), "exits non-zero: {out}");
    assert!(out.contains("Message Content Intent"), "{out}");
    assert!(out.contains("Privileged Gateway Intents"), "{out}");
}

/// A token Discord refuses is reported at once, not at shutdown.
#[tokio::test]
async fn a_refused_token_is_reported_at_once() {
    let fake = FakeDiscord::start(FakeOptions::default()).await.unwrap();
    let started = Instant::now();
    let (status, out) = tokio::task::spawn_blocking(move || run_until_it_exits(&fake, "not-the-token")).await.unwrap();
    assert!(!status.success(), "{out}");
    assert!(out.contains("refused the bot token"), "{out}");
    assert!(out.contains("BEACON_DISCORD_TOKEN"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(15), "reported at start, took {:?}", started.elapsed());
}

/// While the gateway is refused, readiness says so (an orchestrator stops routing to it).
#[tokio::test]
async fn readiness_fails_when_the_gateway_is_refused() {
    beacon_http::install_crypto_provider();
    let fake = FakeDiscord::start(FakeOptions::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = test_config_with(&fake, &dir, false, true, &[("BEACON_DISCORD_TOKEN".into(), "not-the-token".into())]);
    let running = beacon::run::start(std::sync::Arc::new(config)).await.unwrap();
    let fatal = running.app.fatal.clone();
    tokio::time::timeout(Duration::from_secs(10), fatal.cancelled()).await.expect("the refusal is noticed");
    let ready = reqwest::get(format!("http://{}/health/ready", running.addr)).await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(body.to_string().contains("refused the bot token"), "{body}");
    running.shutdown().await;
}

/// Logs are JSON lines for a collector (stderr not a terminal) and readable text on a terminal
/// (`script` gives the binary a pseudo-terminal); `BEACON_LOG_FORMAT` overrides.
#[test]
fn logs_are_readable_on_a_terminal_and_json_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let piped = beacon().arg("migrate").env("BEACON_DATA_DIR", dir.path()).output().unwrap();
    let first = String::from_utf8_lossy(&piped.stderr).lines().next().unwrap_or_default().to_owned();
    assert!(first.starts_with('{'), "JSON when piped: {first}");

    let bin = env!("CARGO_BIN_EXE_beacon");
    let tty = |format: &str| {
        let cmd = format!("BEACON_LOG_FORMAT={format} BEACON_DATA_DIR={} {bin} migrate", dir.path().display());
        let out = Command::new("script").args(["-q", "-e", "-c", &cmd, "/dev/null"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = tty("");
    assert!(text.contains("INFO") && !text.contains("{\"timestamp\""), "readable on a terminal: {text}");
    let forced = tty("json");
    assert!(forced.contains("{\"timestamp\""), "json when asked: {forced}");
}

/// Where no CA certificates are installed, Beacon says so and how to fix it instead of
/// panicking inside an HTTP client.
#[test]
fn no_ca_certificates_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let out = beacon()
        .arg("migrate")
        .env("BEACON_DATA_DIR", dir.path())
        .env("SSL_CERT_FILE", &empty)
        .env("SSL_CERT_DIR", dir.path().join("no-such-dir"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no CA certificates"), "{stderr}");
    assert!(stderr.contains("ca-certificates"), "says how to fix it: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
