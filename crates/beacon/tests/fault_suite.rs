//! The fault suite of the scale-out roles (`scripts/fault-suite.sh`; CI runs it with every test):
//! real `beacon` processes — one `web`, one `gateway`, three `worker`s — on a PostgreSQL and a
//! Redis of the suite's own, against the fake Discord (and a fake LLM). A flood of questions
//! (gateway messages mentioning the bot) and commands (`/ask` over HTTP interactions) runs through
//! each fault in turn: a worker killed with SIGKILL, the gateway's connections dropped (resumed),
//! REST 5xx and 429 answers, a Redis restart, LLM calls timing out, a PostgreSQL restart (the
//! suite runs a PostgreSQL and a Redis of its own, so restarting them touches no other test). Counted on the fake Discord per fault: every
//! question answered exactly once, every interaction acknowledged in time, nothing said twice.
//!
//! Also: four gateway processes (a StatefulSet of 4 replicas) identify 8 shards against the
//! fake's `max_concurrency` 2 buckets, which it enforces as Discord does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use beacon_testkit::llm::{Dialect, FakeLlm, FakeReply};
use beacon_testkit::services::ScratchDatabase;
use beacon_testkit::{CommandInvocation, Delivery, FakeDiscord, FakeOptions, Fault, FaultKind, GuildSpec, MemberSpec};
use serde_json::json;
use tokio::process::{Child, Command};

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

fn openapi() -> Option<PathBuf> {
    std::env::var_os("BEACON_DISCORD_OPENAPI").map(Into::into)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A Redis server of the suite's own, restartable, persisting every write (`appendfsync always`).
struct Redis {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Redis {
    async fn start() -> Option<Redis> {
        if std::process::Command::new("redis-server").arg("--version").output().is_err() {
            assert!(!beacon_testkit::services::services_required(), "redis-server is not installed");
            eprintln!("skipping: redis-server is not installed");
            return None;
        }
        let mut redis = Redis { port: free_port(), dir: tempfile::tempdir().expect("tempdir"), child: None };
        redis.spawn().await;
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on {}", self.port);
    }

    async fn restart(&mut self, down_for: Duration) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
        tokio::time::sleep(down_for).await;
        self.spawn().await;
    }
}

/// A PostgreSQL server of the suite's own, so it can be restarted without touching the shared
/// one other tests use. PostgreSQL refuses to run as root: as root, `initdb` and `postgres` run
/// as the `postgres` user through `setpriv` (which execs, so the child is the postmaster).
struct Postgres {
    port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Postgres {
    async fn start() -> Option<Postgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|versions| {
            versions.filter_map(Result::ok).map(|v| v.path().join("bin")).filter(|b| b.join("initdb").exists()).max()
        });
        let Some(bin) = bin else {
            assert!(!beacon_testkit::services::services_required(), "PostgreSQL is not installed");
            eprintln!("skipping: PostgreSQL is not installed");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        if is_root() {
            let status = std::process::Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of the PostgreSQL folder failed");
        }
        let out = Self::as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.path().join("data"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .await
            .expect("initdb runs");
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut pg = Postgres { port: free_port(), bin, dir, child: None };
        pg.spawn().await;
        Some(pg)
    }

    fn as_postgres(program: &Path) -> Command {
        if is_root() {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    async fn spawn(&mut self) {
        let child = Self::as_postgres(&self.bin.join("postgres"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-p", &self.port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"])
            .arg("-k")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("postgres starts");
        self.child = Some(child);
        for _ in 0..200 {
            if sqlx::PgPool::connect(&self.url()).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("postgres did not accept connections on {}", self.port);
    }

    /// A fast shutdown (SIGINT: every connection is cut), `down_for` of nothing, then a start.
    async fn restart(&mut self, down_for: Duration) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill").args(["-INT", &pid.to_string()]).status().await;
            }
            let _ = child.wait().await;
        }
        tokio::time::sleep(down_for).await;
        self.spawn().await;
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// One `beacon` process and its log file.
struct Proc {
    name: String,
    port: u16,
    child: Child,
    _data: tempfile::TempDir,
    log: PathBuf,
}

struct Deployment {
    env: Vec<(String, String)>,
    logs: tempfile::TempDir,
    procs: Vec<Proc>,
}

impl Deployment {
    fn command(&self, args: &[&str], data: &Path, port: u16) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
        cmd.args(args)
            .current_dir(data)
            .env("BEACON_DATA_DIR", data)
            .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a one-shot command (migrate, commands sync, ingest) to completion.
    async fn once(&self, args: &[&str]) {
        let data = tempfile::tempdir().expect("tempdir");
        let out = self.command(args, data.path(), free_port()).output().await.expect("beacon runs");
        assert!(
            out.status.success(),
            "beacon {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts a role; returns once its readiness endpoint answers 200.
    async fn spawn(&mut self, name: &str, args: &[&str], extra: &[(&str, String)]) -> u16 {
        let data = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = self.logs.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = self.command(args, data.path(), port);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(Stdio::from(file.try_clone().expect("log file")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("beacon starts");
        self.procs.push(Proc { name: name.to_owned(), port, child, _data: data, log });
        wait_ready(port, name, &self.procs).await;
        port
    }

    fn proc(&mut self, name: &str) -> &mut Proc {
        self.procs.iter_mut().find(|p| p.name == name).unwrap_or_else(|| panic!("no process {name}"))
    }

    /// SIGKILL: no shutdown, no lease released, entries left pending.
    async fn kill9(&mut self, name: &str) {
        let p = self.proc(name);
        p.child.start_kill().expect("SIGKILL sent");
        let _ = p.child.wait().await;
        self.procs.retain(|p| p.name != name);
    }

    /// Discord 429s the live processes counted (`beacon_discord_rest_rate_limited_total` in
    /// their `/metrics`).
    async fn rate_limited_total(&self) -> u64 {
        let mut total = 0;
        for p in &self.procs {
            let url = format!("http://127.0.0.1:{}/metrics", p.port);
            let text = reqwest::get(&url).await.expect("metrics").text().await.expect("metrics text");
            total += text
                .lines()
                .find_map(|l| l.strip_prefix("beacon_discord_rest_rate_limited_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("{}: no beacon_discord_rest_rate_limited_total in /metrics", p.name));
        }
        total
    }

    fn dump_logs(&self) {
        for p in &self.procs {
            let text = std::fs::read_to_string(&p.log).unwrap_or_default();
            let notable: Vec<&str> = text.lines().filter(|l| !l.contains("\"level\":\"INFO\"")).collect();
            eprintln!("--- {} (warnings and errors)\n{}", p.name, notable.join("\n"));
        }
    }
}

async fn wait_ready(port: u16, name: &str, procs: &[Proc]) {
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("http://127.0.0.1:{port}/health/ready")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for p in procs {
        eprintln!("--- {}\n{}", p.name, std::fs::read_to_string(&p.log).unwrap_or_default());
    }
    panic!("{name} never became ready on port {port}");
}

/// The worker process (`worker-N`) holding the lease of `partition`; its consumer name is the
/// pod name and the process id.
async fn partition_holder(url: &str, partition: u64) -> String {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis answers");
    for _ in 0..100 {
        let holder: Option<String> = redis::cmd("GET")
            .arg(format!("beacon:events:lease:{partition}"))
            .query_async(&mut conn)
            .await
            .expect("GET");
        if let Some(name) = holder.and_then(|h| h.rsplit_once('-').map(|(pod, _)| pod.to_owned())) {
            return name;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no worker holds partition {partition}");
}

/// Replies on the fake per question message id (a reply names the question it answers).
fn replies(fake: &FakeDiscord, channel: u64) -> BTreeMap<u64, usize> {
    let mut out = BTreeMap::new();
    for m in fake.messages(channel) {
        if let Some(id) = m["message_reference"]["message_id"].as_str().and_then(|s| s.parse().ok()) {
            *out.entry(id).or_default() += 1;
        }
    }
    out
}

/// What one fault's flood came to, as the fake counted it.
#[derive(Debug, Default)]
struct Report {
    fault: &'static str,
    questions: usize,
    answered_once: usize,
    answered_twice: usize,
    unanswered: usize,
    commands: usize,
    acknowledged: usize,
    /// Not acknowledged at all.
    expired: usize,
    /// Answered after Discord's 3 s (refused by the fake).
    late: usize,
}

struct Flood<'a> {
    fake: &'a FakeDiscord,
    guild: u64,
    channel: u64,
    members: Vec<u64>,
    bot: u64,
    next: usize,
}

impl Flood<'_> {
    fn member(&self) -> u64 {
        self.members[self.next % self.members.len()]
    }

    async fn question(&mut self) -> u64 {
        let (q, _) = QUESTIONS[self.next % QUESTIONS.len()];
        self.next += 1;
        self.fake
            .send_message(self.guild, self.channel, self.member(), &format!("<@{}> {q} (#{})", self.bot, self.next))
            .await
            .expect("message sent")
    }

    async fn command(&mut self) -> beacon_testkit::InteractionHandle {
        let (q, _) = QUESTIONS[self.next % QUESTIONS.len()];
        self.next += 1;
        let inv = CommandInvocation {
            guild_id: self.guild,
            channel_id: self.channel,
            user_id: self.member(),
            name: "ask".into(),
            options: json!([{"type": 3, "name": "question", "value": q}]),
            member_permissions: None,
        };
        self.fake.invoke_command(inv, Delivery::Http).await.expect("interaction sent")
    }
}

/// Waits (up to 90 s) for every question to be answered, then counts.
async fn settle(
    fault: &'static str,
    fake: &FakeDiscord,
    channel: u64,
    questions: &[u64],
    commands: Vec<beacon_testkit::InteractionHandle>,
    late_seen: &mut usize,
) -> Report {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while tokio::time::Instant::now() < deadline {
        let r = replies(fake, channel);
        if questions.iter().all(|q| r.contains_key(q)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A late duplicate would show up now.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = replies(fake, channel);
    let mut report = Report { fault, questions: questions.len(), commands: commands.len(), ..Report::default() };
    for q in questions {
        match r.get(q).copied().unwrap_or(0) {
            0 => report.unanswered += 1,
            1 => report.answered_once += 1,
            _ => report.answered_twice += 1,
        }
    }
    for h in &commands {
        match fake.wait_response(h, Duration::from_secs(15)).await {
            Ok(_) => report.acknowledged += 1,
            Err(_) => report.expired += 1,
        }
    }
    // Responses the fake refused as too late (Discord's 10062), in this phase only.
    let late: Vec<_> = fake.violations().into_iter().filter(|v| v.reason.contains("initial response after")).collect();
    for v in late.iter().skip(*late_seen) {
        eprintln!("{fault}: late response: {} {}: {}", v.method, v.path, v.reason);
    }
    report.late = late.len() - *late_seen;
    *late_seen = late.len();
    report
}

// Run alone (scripts/fault-suite.sh, which .ci/run calls after the rest of the suite): its
// processes must answer interactions within Discord's 3 s, which a 2-core machine running the
// whole suite beside it cannot promise.
#[ignore = "run alone by scripts/fault-suite.sh (CI runs it after the suite)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_suite_every_question_answered_once_through_every_fault() {
    let Some(mut pg) = Postgres::start().await else { return };
    let Some(mut redis) = Redis::start().await else { return };
    let llm = FakeLlm::start().await.expect("fake LLM starts");
    let fake = FakeDiscord::start(FakeOptions { openapi_path: openapi(), ..FakeOptions::default() })
        .await
        .expect("fake discord starts");
    let guild = fake.create_guild(GuildSpec {
        name: "Fault Guild".into(),
        owner_id: None,
        text_channels: vec!["general".into()],
        roles: vec![],
        members: vec![
            MemberSpec { user_id: None, username: "owner".into(), roles: vec![] },
            MemberSpec { user_id: None, username: "bob".into(), roles: vec![] },
            MemberSpec { user_id: None, username: "carol".into(), roles: vec![] },
            MemberSpec { user_id: None, username: "dave".into(), roles: vec![] },
        ],
    });
    let general = guild.channels.iter().find(|c| c.name == "general").map(|c| c.id).expect("general");
    // Members take turns, each within the per-member rate limit.
    let members: Vec<u64> = guild
        .members
        .iter()
        .filter(|m| ["bob", "carol", "dave"].contains(&m.username.as_str()))
        .map(|m| m.user_id)
        .collect();
    let mut env = vec![
        ("BEACON_DISCORD_API_URL".to_owned(), fake.base_url()),
        ("BEACON_DISCORD_GATEWAY_URL".to_owned(), fake.gateway_url()),
        ("BEACON_DISCORD_TOKEN".to_owned(), fake.bot_token()),
        ("BEACON_DISCORD_APPLICATION_ID".to_owned(), fake.application_id().to_string()),
        ("BEACON_DISCORD_PUBLIC_KEY".to_owned(), fake.public_key_hex()),
        ("BEACON_DATABASE_URL".to_owned(), pg.url()),
        ("BEACON_LLM_PROVIDER".to_owned(), "openai".to_owned()),
        ("BEACON_LLM_API_KEY".to_owned(), "sk-fault-suite".to_owned()),
        ("BEACON_LLM_BASE_URL".to_owned(), llm.openai_base_url()),
        ("BEACON_LLM_TIMEOUT".to_owned(), "1s".to_owned()),
        ("BEACON_LLM_MAX_RETRIES".to_owned(), "0".to_owned()),
        ("BEACON_REDIS_URL".to_owned(), redis.url()),
        ("BEACON_SCALE_PARTITIONS".to_owned(), "8".to_owned()),
        ("BEACON_SCALE_CLAIM_IDLE".to_owned(), "2s".to_owned()),
        ("BEACON_SHUTDOWN_GRACE".to_owned(), "3s".to_owned()),
        ("BEACON_LOG_LEVEL".to_owned(), "info".to_owned()),
        ("BEACON_LOG_FORMAT".to_owned(), "json".to_owned()),
    ];
    if let Some(dir) = std::env::var_os("BEACON_EMBED_MODEL_DIR") {
        env.push(("BEACON_EMBED_MODEL_DIR".to_owned(), dir.to_string_lossy().into_owned()));
    }
    let mut d = Deployment { env, logs: tempfile::tempdir().expect("tempdir"), procs: Vec::new() };
    let docs = tempfile::tempdir().expect("tempdir");
    for (name, body) in DOCS {
        std::fs::write(docs.path().join(name), body).expect("doc written");
    }
    d.once(&["migrate"]).await;
    d.once(&["commands", "sync"]).await;
    d.once(&["ingest", "--guild", &guild.id.to_string(), &docs.path().display().to_string()]).await;

    let web = d.spawn("web", &["web"], &[]).await;
    fake.set_interactions_endpoint(&format!("http://127.0.0.1:{web}/interactions"));
    for (key, value) in [("support.user_per_minute", "60"), ("support.guild_per_minute", "1000")] {
        let inv = CommandInvocation {
            guild_id: guild.id,
            channel_id: general,
            user_id: guild.owner_id,
            name: "config".into(),
            options: json!([{"type": 1, "name": "set", "options": [
                {"type": 3, "name": "key", "value": key}, {"type": 3, "name": "value", "value": value}
            ]}]),
            member_permissions: None,
        };
        let h = fake.invoke_command(inv, Delivery::Http).await.expect("config set");
        let out = fake.wait_response(&h, Duration::from_secs(10)).await.expect("config answered");
        assert!(out.data.to_string().contains(value), "{out:?}");
    }
    d.spawn("gateway", &["gateway"], &[]).await;
    for w in ["worker-1", "worker-2", "worker-3"] {
        d.spawn(w, &["worker"], &[("POD_NAME", w.to_owned())]).await;
    }
    fake.wait_for_shards(1, Duration::from_secs(30)).await.expect("the gateway connects");

    let mut flood =
        Flood { fake: &fake, guild: guild.id, channel: general, members, bot: fake.application_id(), next: 0 };
    let mut reports = Vec::new();
    let mut late_seen = 0;
    let phase_size = 12;

    // 1. The worker that holds the guild's partition is killed with SIGKILL mid-flood; a new
    // one takes its place.
    let (mut qs, mut cs) = (Vec::new(), Vec::new());
    for i in 0..phase_size {
        qs.push(flood.question().await);
        if i % 4 == 0 {
            cs.push(flood.command().await);
        }
        if i == phase_size / 3 {
            let victim = partition_holder(&redis.url(), guild.id % 8).await;
            d.kill9(&victim).await;
        }
    }
    d.spawn("worker-4", &["worker"], &[("POD_NAME", "worker-4".to_owned())]).await;
    reports.push(settle("worker killed (kill -9)", &fake, general, &qs, std::mem::take(&mut cs), &mut late_seen).await);

    // 2. The gateway's connections dropped: twilight reconnects and resumes.
    let resumes = fake.resume_count();
    qs.clear();
    for i in 0..phase_size {
        if i == phase_size / 2 {
            fake.gateway_disconnect_all(None).await;
        }
        qs.push(flood.question().await);
        if i % 4 == 0 {
            cs.push(flood.command().await);
        }
    }
    reports.push(
        settle("gateway disconnect and resume", &fake, general, &qs, std::mem::take(&mut cs), &mut late_seen).await,
    );
    assert!(fake.resume_count() > resumes, "the gateway resumed its session");

    // 3 and 4. Discord answers 5xx, then 429, to the bot's messages.
    for (fault, status) in [("REST 5xx", 500), ("REST 429", 429)] {
        let counted_before = d.rate_limited_total().await;
        fake.inject(Fault {
            method: Some("POST".into()),
            path_contains: format!("/channels/{general}/messages"),
            kind: FaultKind::Status(status),
            times: 4,
        });
        qs.clear();
        for i in 0..phase_size {
            qs.push(flood.question().await);
            if i % 4 == 0 {
                cs.push(flood.command().await);
            }
        }
        reports.push(settle(fault, &fake, general, &qs, std::mem::take(&mut cs), &mut late_seen).await);
        if status == 429 {
            // twilight retried the 429s out of sight; the operator still sees them counted (the
            // exact count per 429 is `beacon-discord::ratelimits`' test; here a request given up
            // before its 429 arrived is not seen by any process).
            let counted = d.rate_limited_total().await - counted_before;
            println!("REST 429: 4 injected, {counted} counted in the processes' /metrics");
            assert!(counted >= 1, "4 injected 429s, none counted in /metrics");
        }
    }

    // 5. Redis restarts while questions arrive (the gateway holds them and appends after).
    qs.clear();
    for i in 0..phase_size {
        if i == phase_size / 3 {
            redis.restart(Duration::from_secs(2)).await;
        }
        qs.push(flood.question().await);
        if i % 4 == 0 {
            cs.push(flood.command().await);
        }
    }
    reports.push(settle("Redis restart", &fake, general, &qs, std::mem::take(&mut cs), &mut late_seen).await);

    // 6. The LLM stops answering in time: every call of the phase times out (and the breaker
    // may open); members still get one answer each, quoted from the knowledge base.
    for _ in 0..phase_size * 2 {
        llm.push(Dialect::OpenAi, FakeReply::text("too late").delayed(Duration::from_secs(3)));
    }
    qs.clear();
    for i in 0..phase_size {
        qs.push(flood.question().await);
        if i % 4 == 0 {
            cs.push(flood.command().await);
        }
    }
    reports.push(settle("LLM timeouts", &fake, general, &qs, std::mem::take(&mut cs), &mut late_seen).await);

    // 7. PostgreSQL restarts (every connection cut) while questions arrive.
    qs.clear();
    for i in 0..phase_size {
        if i == phase_size / 3 {
            pg.restart(Duration::from_secs(2)).await;
        }
        qs.push(flood.question().await);
        if i % 4 == 0 {
            cs.push(flood.command().await);
        }
    }
    reports.push(settle("PostgreSQL restart", &fake, general, &qs, std::mem::take(&mut cs), &mut late_seen).await);

    println!(
        "{:<32} {:>9} {:>6} {:>6} {:>10} {:>8} {:>6} {:>8} {:>5}",
        "fault", "questions", "once", "twice", "unanswered", "commands", "acked", "expired", "late"
    );
    for r in &reports {
        println!(
            "{:<32} {:>9} {:>6} {:>6} {:>10} {:>8} {:>6} {:>8} {:>5}",
            r.fault,
            r.questions,
            r.answered_once,
            r.answered_twice,
            r.unanswered,
            r.commands,
            r.acknowledged,
            r.expired,
            r.late
        );
    }
    let failed = reports.iter().any(|r| r.answered_once != r.questions || r.acknowledged != r.commands || r.late > 0);
    if failed {
        d.dump_logs();
    }
    // Nothing said twice anywhere: no answer to one question twice, whatever the phase.
    let all = replies(&fake, general);
    assert!(all.values().all(|n| *n == 1), "a question was answered twice: {all:?}");
    assert!(!failed, "a fault lost or repeated work (see the table above)");
    for p in &mut d.procs {
        let _ = p.child.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_gateway_pods_identify_within_the_shared_max_concurrency_buckets() {
    let Some(db) = ScratchDatabase::create().await else { return };
    let Some(redis) = Redis::start().await else { return };
    let fake = FakeDiscord::start(FakeOptions {
        openapi_path: openapi(),
        shards: 8,
        max_concurrency: 2,
        ..FakeOptions::default()
    })
    .await
    .expect("fake discord starts");
    let env = vec![
        ("BEACON_DISCORD_API_URL".to_owned(), fake.base_url()),
        ("BEACON_DISCORD_GATEWAY_URL".to_owned(), fake.gateway_url()),
        ("BEACON_DISCORD_TOKEN".to_owned(), fake.bot_token()),
        ("BEACON_DISCORD_APPLICATION_ID".to_owned(), fake.application_id().to_string()),
        ("BEACON_DATABASE_URL".to_owned(), db.url.clone()),
        ("BEACON_REDIS_URL".to_owned(), redis.url()),
        ("BEACON_LOG_LEVEL".to_owned(), "info".to_owned()),
    ];
    let mut d = Deployment { env, logs: tempfile::tempdir().expect("tempdir"), procs: Vec::new() };
    d.once(&["migrate"]).await;
    // A StatefulSet of 4: pod k runs the k-th quarter of the 8 shards. All start at once.
    for k in 0..4 {
        let pod = format!("beacon-gateway-{k}");
        d.spawn(&pod, &["gateway", "--replicas", "4", "--total", "8"], &[("POD_NAME", pod.clone())]).await;
    }
    fake.wait_for_shards(8, Duration::from_secs(90)).await.expect("every shard connects");
    assert_eq!(
        fake.connected_shards(),
        (0..8).map(|id| (id, 8)).collect::<Vec<_>>(),
        "each shard once, across the 4 pods"
    );
    assert_eq!(fake.identify_count(), 8, "one identify per shard, none refused");
    // The fake records an identify inside another's 5 s in its bucket as a violation.
    fake.assert_no_violations();
    for p in &mut d.procs {
        let _ = p.child.start_kill();
    }
    db.drop_database().await;
}
