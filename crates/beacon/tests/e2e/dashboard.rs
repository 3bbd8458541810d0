//! The dashboard in a real browser: Debian's headless Chromium, driven by playwright-core
//! (`crates/beacon/tests/browser/dashboard.mjs`), against Beacon started as `beacon run` starts
//! it and the fake Discord — log in through the fake's consent page, switch server, change a
//! setting and see the running bot use it, revert it, grant and revoke access, ask the
//! playground, open a transcript, view the usage charts; at 1280 and 375 px, screenshots under
//! `target/browser-artifacts/`. Missing Chromium or Node fails the test (scripts/browser.sh
//! installs them); it never skips.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use beacon_testkit::Delivery;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::binary::{beacon, free_port, terminate, wait_http};
use crate::harness::*;

const DOCS: &[(&str, &str)] = &[
    (
        "refunds.md",
        "# Refunds\n\nYou can get a refund within 14 days of purchase. Open the Orders page and choose Refund.\n",
    ),
    (
        "account.md",
        "# Account\n\n## Password reset\n\nChoose Forgot password on the login page; we e-mail you a link.\n",
    ),
];

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("browser-artifacts/dashboard")
}

/// Runs the browser script; `on_step` answers its `STEP` lines. Returns the steps seen.
async fn run_browser(env: &[(&str, String)], mut on_step: impl AsyncFnMut(&str)) -> Vec<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "Chromium is missing at {chromium}: run scripts/browser.sh (Debian's chromium and chromium-driver)"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: run scripts/browser.sh (npm ci in crates/beacon/tests/browser)"
    );
    let shots = artifacts();
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg("dashboard.mjs").current_dir(browser_dir()).env("SHOTS", &shots).env("CHROMIUM", &chromium);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/browser.sh installs it)");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut steps = Vec::new();
    let mut done = false;
    while let Some(line) = out.next_line().await.expect("browser output") {
        println!("browser: {line}");
        let Some(step) = line.strip_prefix("STEP ") else {
            done |= line == "DONE";
            continue;
        };
        on_step(step).await;
        steps.push(step.to_owned());
        stdin.write_all(b"ok\n").await.expect("answer the browser");
    }
    let status = child.wait().await.expect("node exits");
    assert!(status.success() && done, "the browser run failed (screenshots in {})", shots.display());
    steps
}

/// The owner's `/support-stats` (a command of the support module; cheap, no model involved).
async fn support_stats(t: &TestApp) -> String {
    text_of(&t.command(t.owner(), "support-stats", json!([]), Delivery::Http).await)
}

/// Ticket #1 of bob, with one message, closed (so it has a transcript).
async fn closed_ticket(t: &TestApp) {
    let bob = t.member("bob");
    let thread = t.open_ticket(bob, "My parcel never arrived").await;
    t.fake.send_message(t.guild.id, thread, bob, "It was due on Monday.").await.expect("message");
    let message = t
        .fake
        .messages(thread)
        .into_iter()
        .find(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .and_then(|m| m["id"].as_str().and_then(|s| s.parse::<u64>().ok()))
        .expect("the ticket's message");
    t.fake.click_button(t.guild.id, thread, bob, message, "tickets:close:1", Delivery::Gateway).await.expect("close");
    for _ in 0..200 {
        let key: Option<String> =
            sqlx::query_scalar("SELECT transcript_key FROM tickets WHERE guild_id = $1 AND number = 1")
                .bind(t.guild.id as i64)
                .fetch_one(t.app().store.pool())
                .await
                .expect("ticket #1");
        if key.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ticket #1 got no transcript");
}

async fn authorized(t: &TestApp) -> Vec<u64> {
    t.app().guild(t.guild.id).authorized_users().await.expect("authorized users").iter().map(|u| u.user_id).collect()
}

#[tokio::test]
async fn dashboard_in_a_real_browser() {
    // The developer team (bob, through the HQ guild) opens the Shards page.
    let t = TestApp::spawn_with(Options { oauth: true, dev_team: true, ..Options::default() }).await;
    let dir = tempfile::tempdir().expect("docs");
    for (name, body) in DOCS {
        std::fs::write(dir.path().join(name), body).expect("doc");
    }
    let kb = beacon::backends::open_knowledge_base(&t.app().config, &t.app().store).await.expect("kb");
    kb.sync(t.guild.id, &beacon_kb::FolderSource::new(dir.path()), &mut |_| {}).await.expect("sync");
    // The owner manages a second server too (the switcher has a choice).
    t.fake.join_user_guilds(t.owner(), 1, true, false);
    closed_ticket(&t).await;
    let usage = beacon_llm::UsageStore::attach(t.app().store.clone());
    for (model, tokens, cost) in [("gpt-test", 1200, 2_400), ("claude-test", 800, 3_100)] {
        let record = beacon_llm::UsageRecord {
            guild_id: t.guild.id,
            module: "support".into(),
            user_id: None,
            provider: "openai".into(),
            model: model.into(),
            usage: beacon_llm::Usage { input_tokens: tokens, output_tokens: tokens / 4, ..Default::default() },
            cost_micros: cost,
            latency_ms: 400,
            outcome: beacon_llm::Outcome::Ok,
            error_kind: None,
            at: beacon_store::now_ms(),
        };
        usage.record(&record).await.expect("usage");
    }

    // A moderation case (bob warned) and an FAQ search that found nothing (a gap).
    let moderator = crate::moderation::moderated(&t).await;
    let bob = t.member("bob");
    let warn = json!([crate::moderation::opt_user("user", bob), opt_str("reason", "spamming links")]);
    let out = t.command(moderator, "warn", warn, Delivery::Http).await;
    assert!(text_of(&out).contains("#1"), "{}", text_of(&out));
    let out = t.command(bob, "faq", sub("search", json!([opt_str("query", "xyzzy plugh")])), Delivery::Http).await;
    assert!(!text_of(&out).is_empty());

    let before = authorized(&t).await;
    assert!(!before.contains(&t.member("bob")));
    let env = [
        ("MODE", "dashboard".to_owned()),
        ("BEACON_URL", format!("http://{}", t.addr())),
        ("OWNER_ID", t.owner().to_string()),
        ("GUILD_NAME", t.guild.name.clone()),
        ("MEMBER_NAME", "bob".to_owned()),
        ("MEMBER_ID", t.member("bob").to_string()),
        ("DEV_ID", t.member("bob").to_string()),
    ];
    let steps = run_browser(&env, async |step: &str| match step {
        "setting-changed" => {
            let value = t.app().settings.get_i64(&t.app().guild(t.guild.id), "support.min_confidence").await;
            assert_eq!(value.expect("setting"), 60);
        }
        "module-off" => {
            let text = support_stats(&t).await;
            assert!(text.contains("The support module is turned off"), "the running bot uses the switch: {text}");
        }
        "setting-reverted" => {
            let text = support_stats(&t).await;
            assert!(!text.is_empty() && !text.contains("turned off"), "reverted, the module answers again: {text}");
        }
        "access-granted" => {
            let now = authorized(&t).await;
            assert!(now.contains(&t.member("bob")) && now.len() == before.len() + 1, "{now:?}");
        }
        "access-revoked" => assert_eq!(authorized(&t).await, before),
        "faq-imported" => {
            let entries = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM faq_entries WHERE guild_id = $1")
                .bind(t.guild.id as i64)
                .fetch_one(t.app().store.pool())
                .await
                .expect("faq entries");
            assert_eq!(entries, 2, "the CSV's two rows are FAQ entries");
        }
        "source-added" => {
            let sources = beacon_kb::store::KbRepo::new(t.app().guild(t.guild.id)).sources().await.expect("sources");
            assert!(sources.iter().any(|s| s.name == "Docs site"), "the website source is stored");
        }
        other => panic!("unknown step {other}"),
    })
    .await;
    assert_eq!(
        steps,
        [
            "setting-changed",
            "module-off",
            "setting-reverted",
            "access-granted",
            "access-revoked",
            "faq-imported",
            "source-added"
        ]
    );
    let guild = t.app().guild(t.guild.id);
    let history = t.app().settings.history(&guild, Some("support.min_confidence"), 10).await;
    assert_eq!(history.expect("audit").len(), 1, "the change is audited, the refused value is not");
    let history = t.app().settings.history(&guild, Some("support.enabled"), 10).await;
    assert_eq!(history.expect("audit").len(), 2, "the switch and its revert are audited");
    // Every page's server time is in the metrics, by route template (never an id).
    let metrics = t.app().metrics.render();
    assert!(metrics.contains("beacon_page_seconds_count{route=\"/g/{guild_id}/settings\"}"), "{metrics}");
    assert!(!metrics.contains(&t.guild.id.to_string()), "no ids in metrics");
    let shots = artifacts();
    for name in [
        "settings-1280",
        "settings-375",
        "kb-1280",
        "usage-375",
        "transcript-1280",
        "faq-1280",
        "faq-375",
        "cases-1280",
        "cases-375",
        "case-1280",
        "kb-add-invalid-1280",
        "kb-add-375",
        "shards-1280",
        "shards-375",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "screenshot {name}");
    }
    t.stop().await;
}

/// The real binary on a fresh install (no bot token): `/` explains the next steps and the
/// playground answers from the local knowledge base `beacon ingest` filled.
#[tokio::test]
async fn a_fresh_install_explains_the_next_steps_and_answers_from_the_local_folder() {
    let data = tempfile::tempdir().expect("data");
    let docs = tempfile::tempdir().expect("docs");
    for (name, body) in DOCS {
        std::fs::write(docs.path().join(name), body).expect("doc");
    }
    let model = std::env::var("BEACON_EMBED_MODEL_DIR").ok();
    let with_model = |cmd: &mut std::process::Command| {
        cmd.env("BEACON_DATA_DIR", data.path());
        if let Some(m) = &model {
            cmd.env("BEACON_EMBED_MODEL_DIR", m);
        }
    };
    let mut ingest = beacon();
    with_model(&mut ingest);
    let out = ingest.arg("ingest").arg(docs.path()).output().expect("beacon ingest");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let port = free_port();
    let mut run = beacon();
    with_model(&mut run);
    let child = run
        .arg("run")
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .stderr(Stdio::null())
        .spawn()
        .expect("beacon run");
    // Stopped even when an assertion fails first.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Stop(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&format!("{base}/health/ready")).await;
    let page = reqwest::get(format!("{base}/")).await.expect("first page");
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    let body = page.text().await.expect("html");
    assert!(body.contains("Create the Discord application") && body.contains("BEACON_DISCORD_TOKEN"), "{body}");
    let steps = run_browser(&[("MODE", "setup".to_owned()), ("BEACON_URL", base.clone())], async |step: &str| {
        panic!("no step expected: {step}")
    })
    .await;
    assert!(steps.is_empty());
    terminate(&child.0);
    let status = child.0.wait().expect("beacon exits");
    assert!(status.success(), "{status:?}");
}
