//! The dashboard in a real browser: Debian's headless Chromium, driven by playwright-core
//! (`crates/beacon/tests/browser/dashboard.mjs`), against the real binary (`beacon run`, built by
//! cargo) and the fake Discord — log in through the fake's consent page, switch server, change a
//! setting and see the running bot use it, revert it, grant and revoke access, ask the
//! playground, open a transcript, view the usage charts; at 1280 and 375 px, screenshots under
//! `target/browser-artifacts/`. Missing Chromium or Node fails the test (scripts/browser.sh
//! installs them); it never skips.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use beacon_testkit::{CommandInvocation, Delivery, FakeDiscord, FakeOptions, GuildInfo};
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

/// Beacon as an operator runs it: `beacon run` (the binary cargo built) against the fake
/// Discord, with the fake's OAuth consent for the login. The test reaches the bot only as
/// Discord does (commands through the fake) and reads its database file for its checks.
struct Process {
    fake: FakeDiscord,
    guild: GuildInfo,
    /// The same SQLite file the process uses, for the test's checks.
    store: beacon_store::Store,
    base: String,
    child: Stop,
    _data: tempfile::TempDir,
}

/// Stops the process even when an assertion fails first.
struct Stop(std::process::Child);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `beacon` with a data folder and the test's embedding model.
fn beacon_in(data: &std::path::Path) -> std::process::Command {
    let mut cmd = beacon();
    cmd.env("BEACON_DATA_DIR", data).env("BEACON_LOG_LEVEL", "warn");
    if let Some(m) = std::env::var_os("BEACON_EMBED_MODEL_DIR") {
        cmd.env("BEACON_EMBED_MODEL_DIR", m);
    }
    cmd
}

/// Runs a `beacon` command to its end without blocking the runtime the fake Discord answers on.
async fn ok(cmd: std::process::Command, what: &str) {
    let out = tokio::process::Command::from(cmd).output().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Process {
    /// The fake Discord with the test guild and the developer team, the knowledge folder
    /// ingested into the guild (`beacon ingest --guild`), usage recorded, the commands
    /// registered (`beacon commands sync`), then `beacon run`, ready and in the guild.
    async fn start(docs: &std::path::Path) -> Process {
        let fake = FakeDiscord::start(FakeOptions { openapi_path: openapi(), ..FakeOptions::default() })
            .await
            .expect("fake discord starts");
        let guild = fake.create_guild(guild_spec());
        let data = tempfile::tempdir().expect("data");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let mut env: Vec<(String, String)> = vec![
            ("BEACON_HTTP_ADDR".into(), format!("127.0.0.1:{port}")),
            ("BEACON_PUBLIC_URL".into(), base.clone()),
            ("BEACON_DISCORD_TOKEN".into(), fake.bot_token()),
            ("BEACON_DISCORD_API_URL".into(), fake.base_url()),
            ("BEACON_DISCORD_GATEWAY_URL".into(), fake.gateway_url()),
            ("BEACON_DISCORD_PUBLIC_KEY".into(), fake.public_key_hex()),
            ("BEACON_DISCORD_APPLICATION_ID".into(), fake.application_id().to_string()),
            ("BEACON_OAUTH_CLIENT_SECRET".into(), fake.oauth_client_secret()),
            ("BEACON_SHUTDOWN_GRACE".into(), "5s".into()),
        ];
        env.extend(developer_team(&fake, &guild));
        // The owner manages a second server too (the switcher has a choice).
        fake.join_user_guilds(guild.owner_id, 1, true, false);

        let mut migrate = beacon_in(data.path());
        migrate.arg("migrate");
        ok(migrate, "beacon migrate").await;
        let mut ingest = beacon_in(data.path());
        ingest.args(["ingest", "--guild", &guild.id.to_string()]).arg(docs);
        ok(ingest, "beacon ingest").await;
        let url = format!("sqlite://{}", data.path().join("beacon.db").display());
        let store = beacon_store::Store::connect(&url).await.expect("the process's database");
        record_usage(&store, guild.id).await;
        let mut sync = beacon_in(data.path());
        sync.args(["commands", "sync"]).envs(env.iter().cloned());
        ok(sync, "beacon commands sync").await;

        fake.register_redirect_uri(&format!("{base}/api/v1/auth/callback"));
        fake.set_interactions_endpoint(&format!("{base}/interactions"));
        let child = beacon_in(data.path())
            .arg("run")
            .envs(env.iter().cloned())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("beacon run");
        let process = Process { fake, guild, store, base, child: Stop(child), _data: data };
        wait_http(&format!("{}/health/ready", process.base)).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while !matches!(process.store.guild(process.guild.id).get().await, Ok(Some(_))) {
            assert!(tokio::time::Instant::now() < deadline, "the guild was never registered from GUILD_CREATE");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        process
    }

    fn member(&self, name: &str) -> u64 {
        self.guild.members.iter().find(|m| m.username == name).map(|m| m.user_id).expect("member")
    }

    fn owner(&self) -> u64 {
        self.guild.owner_id
    }

    fn channel(&self, name: &str) -> u64 {
        self.guild.channels.iter().find(|c| c.name == name).map(|c| c.id).expect("channel")
    }

    fn role(&self, name: &str) -> u64 {
        self.guild.roles.iter().find(|r| r.name == name).map(|r| r.id).expect("role")
    }

    async fn command(&self, user: u64, name: &str, options: serde_json::Value, via: Delivery) -> String {
        let invocation = CommandInvocation {
            guild_id: self.guild.id,
            channel_id: self.channel("general"),
            user_id: user,
            name: name.into(),
            options,
            member_permissions: None,
        };
        text_of(&final_answer(&self.fake, invocation, via).await)
    }

    /// `/config set key value` as the owner.
    async fn set(&self, key: &str, value: &str) {
        let text = self
            .command(
                self.owner(),
                "config",
                sub("set", json!([opt_str("key", key), opt_str("value", value)])),
                Delivery::Http,
            )
            .await;
        assert!(text.starts_with(&format!("`{key}` changed:")), "setting {key}: {text}");
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).bind(self.guild.id as i64).fetch_one(self.store.pool()).await.expect(sql)
    }

    async fn authorized(&self) -> Vec<u64> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT user_id FROM authorized_users WHERE guild_id = $1 ORDER BY user_id")
                .bind(self.guild.id as i64)
                .fetch_all(self.store.pool())
                .await
                .expect("authorized users");
        ids.into_iter().map(|i| i as u64).collect()
    }

    /// SIGTERM; the process stops cleanly, and the fake saw nothing Discord would refuse.
    fn stop(mut self) {
        terminate(&self.child.0);
        let status = self.child.0.wait().expect("beacon exits");
        assert!(status.success(), "{status:?}");
        self.fake.assert_no_violations();
    }
}

/// Two models' usage for the guild, as the LLM service records it.
async fn record_usage(store: &beacon_store::Store, guild_id: u64) {
    let usage = beacon_llm::UsageStore::attach(store.clone());
    for (model, tokens, cost) in [("gpt-test", 1200, 2_400), ("claude-test", 800, 3_100)] {
        let record = beacon_llm::UsageRecord {
            guild_id,
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
}

/// Ticket #1 of bob, with one message, closed (so it has a transcript).
async fn closed_ticket(p: &Process) {
    let bob = p.member("bob");
    p.set("tickets.channel", &p.channel("support").to_string()).await;
    p.command(bob, "ticket", sub("open", json!([opt_str("topic", "My parcel never arrived")])), Delivery::Gateway)
        .await;
    let thread = p.scalar("SELECT channel_id FROM tickets WHERE guild_id = $1 AND number = 1").await as u64;
    p.fake.send_message(p.guild.id, thread, bob, "It was due on Monday.").await.expect("message");
    let message = p
        .fake
        .messages(thread)
        .into_iter()
        .find(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .and_then(|m| m["id"].as_str().and_then(|s| s.parse::<u64>().ok()))
        .expect("the ticket's message");
    p.fake.click_button(p.guild.id, thread, bob, message, "tickets:close:1", Delivery::Gateway).await.expect("close");
    for _ in 0..200 {
        let key: Option<String> =
            sqlx::query_scalar("SELECT transcript_key FROM tickets WHERE guild_id = $1 AND number = 1")
                .bind(p.guild.id as i64)
                .fetch_one(p.store.pool())
                .await
                .expect("ticket #1");
        if key.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("ticket #1 got no transcript");
}

/// A guild where "staff" moderates and the mod log is #mod-log (as `moderation::moderated`);
/// returns the moderator's id.
async fn moderated(p: &Process) -> u64 {
    use crate::moderation::{BAN_MEMBERS, KICK_MEMBERS, MODERATE_MEMBERS};
    let staff = p.role("staff");
    p.fake.set_role_permissions(p.guild.id, staff, BAN_MEMBERS | KICK_MEMBERS | MODERATE_MEMBERS).expect("permissions");
    let moderator = p.fake.add_member(p.guild.id, None, "mod", vec![staff]).expect("moderator");
    p.set("core.staff_roles", &staff.to_string()).await;
    p.set("moderation.log_channel", &p.channel("mod-log").to_string()).await;
    moderator
}

#[tokio::test]
async fn dashboard_in_a_real_browser() {
    let dir = tempfile::tempdir().expect("docs");
    for (name, body) in DOCS {
        std::fs::write(dir.path().join(name), body).expect("doc");
    }
    // The developer team (bob, through the HQ guild) opens the Shards page.
    let p = Process::start(dir.path()).await;
    closed_ticket(&p).await;

    // A moderation case (bob warned by "mod") and an FAQ search that found nothing (a gap).
    let moderator = moderated(&p).await;
    let bob = p.member("bob");
    let warn = json!([crate::moderation::opt_user("user", bob), opt_str("reason", "spamming links")]);
    let out = p.command(moderator, "warn", warn, Delivery::Http).await;
    assert!(out.contains("#1"), "{out}");
    let out = p.command(bob, "faq", sub("search", json!([opt_str("query", "xyzzy plugh")])), Delivery::Http).await;
    assert!(!out.is_empty());

    let before = p.authorized().await;
    assert!(!before.contains(&bob));
    let env = [
        ("MODE", "dashboard".to_owned()),
        ("BEACON_URL", p.base.clone()),
        ("OWNER_ID", p.owner().to_string()),
        ("GUILD_NAME", p.guild.name.clone()),
        ("MEMBER_NAME", "bob".to_owned()),
        ("MEMBER_ID", bob.to_string()),
        ("MODERATOR_NAME", "mod".to_owned()),
        ("DEV_ID", bob.to_string()),
    ];
    // The owner's `/support-stats` (a command of the support module; cheap, no model involved).
    let support_stats = async || p.command(p.owner(), "support-stats", json!([]), Delivery::Http).await;
    let steps = run_browser(&env, async |step: &str| match step {
        "setting-changed" => {
            let value: String = sqlx::query_scalar(
                "SELECT value FROM guild_settings WHERE guild_id = $1 AND key = 'support.min_confidence'",
            )
            .bind(p.guild.id as i64)
            .fetch_one(p.store.pool())
            .await
            .expect("the stored setting");
            assert_eq!(value, "60");
        }
        "module-off" => {
            let text = support_stats().await;
            assert!(text.contains("The support module is turned off"), "the running bot uses the switch: {text}");
        }
        "setting-reverted" => {
            let text = support_stats().await;
            assert!(!text.is_empty() && !text.contains("turned off"), "reverted, the module answers again: {text}");
        }
        "access-granted" => {
            let now = p.authorized().await;
            assert!(now.contains(&bob) && now.len() == before.len() + 1, "{now:?}");
        }
        "access-revoked" => assert_eq!(p.authorized().await, before),
        "faq-imported" => {
            let entries = p.scalar("SELECT COUNT(*) FROM faq_entries WHERE guild_id = $1").await;
            assert_eq!(entries, 2, "the CSV's two rows are FAQ entries");
        }
        "source-added" => {
            let sources = beacon_kb::store::KbRepo::new(p.store.guild(p.guild.id)).sources().await.expect("sources");
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
    let pool = p.store.pool();
    let audited = |key: &'static str| {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM setting_audit WHERE guild_id = $1 AND key = $2")
            .bind(p.guild.id as i64)
            .bind(key)
            .fetch_one(pool)
    };
    assert_eq!(
        audited("support.min_confidence").await.expect("audit"),
        1,
        "the change is audited, the refused value is not"
    );
    assert_eq!(audited("support.enabled").await.expect("audit"), 2, "the switch and its revert are audited");
    // Every page's server time is in the process's metrics, by route template (never an id).
    let metrics = reqwest::get(format!("{}/metrics", p.base)).await.expect("metrics").text().await.expect("text");
    assert!(metrics.contains("beacon_page_seconds_count{route=\"/g/{guild_id}/settings\"}"), "{metrics}");
    assert!(metrics.contains("beacon_page_seconds_count{route=\"/g/{guild_id}/p/{*slug}\"}"), "{metrics}");
    assert!(!metrics.contains(&p.guild.id.to_string()), "no ids in metrics");
    let shots = artifacts();
    for name in [
        "settings-1280",
        "settings-375",
        "kb-1280",
        "kb-375",
        "usage-1280",
        "usage-375",
        "transcript-1280",
        "faq-1280",
        "faq-375",
        "cases-1280",
        "cases-375",
        "case-1280",
        "case-375",
        "kb-add-invalid-1280",
        "kb-add-375",
        "shards-1280",
        "shards-375",
    ] {
        assert!(shots.join(format!("{name}.png")).exists(), "screenshot {name}");
    }
    p.stop();
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
