//! `/remind`: in, at and every, delivered in the channel (pinging only the member, never what
//! the text mentions) or by DM; list and cancel; a member's time zone; limits; a member who
//! cannot post in the channel is refused. Delivery is a durable job: with two workers on one
//! database a reminder is delivered once, and one due while Beacon was stopped is delivered after
//! the restart; a recurring run found late is skipped and the next one scheduled.

use std::sync::Arc;
use std::time::Duration;

use beacon_testkit::Delivery;
use serde_json::{Value, json};

use crate::harness::*;

/// Messages in `channel` that contain `text`.
fn delivered(t: &TestApp, channel: u64, text: &str) -> Vec<Value> {
    let text = format!("you asked to be reminded: {text}");
    t.fake.messages(channel).into_iter().filter(|m| m["content"].as_str().is_some_and(|c| c.contains(&text))).collect()
}

async fn wait_delivered(t: &TestApp, channel: u64, text: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while delivered(t, channel, text).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "reminder {text:?} was never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn remind(t: &TestApp, user: u64, sub_name: &str, options: Value) -> String {
    text_of(&t.command(user, "remind", sub(sub_name, options), Delivery::Http).await)
}

async fn job_of(t: &TestApp, id: i64) -> Option<(String, i64)> {
    sqlx::query_as::<_, (String, i64)>(
        "SELECT state, run_at FROM beacon_jobs WHERE guild_id = $1 AND dedupe_key = $2 ORDER BY id DESC LIMIT 1",
    )
    .bind(t.guild.id as i64)
    .bind(format!("reminder:{id}"))
    .fetch_optional(t.app().store.pool())
    .await
    .unwrap()
}

async fn make_due(t: &TestApp, id: i64, late_ms: i64) {
    sqlx::query("UPDATE beacon_jobs SET run_at = $3 WHERE guild_id = $1 AND dedupe_key = $2 AND state = 'pending'")
        .bind(t.guild.id as i64)
        .bind(format!("reminder:{id}"))
        .bind(beacon_store::now_ms() - late_ms)
        .execute(t.app().store.pool())
        .await
        .unwrap();
}

async fn last_id(t: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT MAX(id) FROM reminders WHERE guild_id = $1")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap()
}

/// The pending run of reminder `id`: its job's payload `run` (the run's scheduled time, what the
/// next run is counted from) and the job's state.
async fn pending_run(t: &TestApp, id: i64) -> Option<i64> {
    let payload: Option<String> = sqlx::query_scalar(
        "SELECT payload FROM beacon_jobs WHERE guild_id = $1 AND dedupe_key = $2 AND state = 'pending'",
    )
    .bind(t.guild.id as i64)
    .bind(format!("reminder:{id}"))
    .fetch_optional(t.app().store.pool())
    .await
    .unwrap();
    payload.and_then(|p| serde_json::from_str::<Value>(&p).ok()).and_then(|p| p["run"].as_i64())
}

/// "Every day at 09:00" keeps firing at 09:00 local time through both of Paris' clock changes.
/// The reminder is set with the command; its pending run is then moved to the morning before a
/// change (as if set long ago) and made due, so the real job runner delivers it and schedules the
/// next run itself, twice on each side of the change.
#[tokio::test(flavor = "multi_thread")]
async fn a_daily_reminder_keeps_its_local_time_across_dst_changes() {
    beacon_http::install_crypto_provider();
    let t = TestApp::spawn().await;
    let bob = t.member("bob");
    remind(&t, bob, "timezone", json!([opt_str("name", "Europe/Paris")])).await;
    let set = remind(
        &t,
        bob,
        "every",
        json!([{"name": "days", "type": 4, "value": 1}, opt_str("time", "09:00"), opt_str("text", "standup"),
               {"name": "dm", "type": 5, "value": true}]),
    )
    .await;
    assert!(set.contains("every 1 day"), "{set}");
    let id = last_id(&t).await;
    let ms = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
    // Spring forward on 2027-03-28 (CET → CEST), fall back on 2027-10-31 (CEST → CET).
    for (eve, runs) in [
        ("2027-03-27T08:00:00Z", ["2027-03-28T07:00:00Z", "2027-03-29T07:00:00Z"]),
        ("2027-10-30T07:00:00Z", ["2027-10-31T08:00:00Z", "2027-11-01T08:00:00Z"]),
    ] {
        sqlx::query(
            "UPDATE beacon_jobs SET payload = $3 WHERE guild_id = $1 AND dedupe_key = $2 AND state = 'pending'",
        )
        .bind(t.guild.id as i64)
        .bind(format!("reminder:{id}"))
        .bind(json!({"id": id, "run": ms(eve)}).to_string())
        .execute(t.app().store.pool())
        .await
        .unwrap();
        let mut previous = ms(eve);
        for expected in runs {
            let sent_before = t.fake.dm_channel(bob).map_or(0, |dm| delivered(&t, dm, "standup").len());
            make_due(&t, id, 0).await;
            let deadline = tokio::time::Instant::now() + WAIT;
            let next = loop {
                if let Some(next) = pending_run(&t, id).await.filter(|n| *n > previous) {
                    break next;
                }
                assert!(tokio::time::Instant::now() < deadline, "the run after {previous} was never scheduled");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let dm = t.fake.dm_channel(bob).expect("a DM");
            assert_eq!(delivered(&t, dm, "standup").len(), sent_before + 1, "the run of {previous} was delivered once");
            assert_eq!(next, ms(expected), "the run after {eve}: 09:00 in Paris is {expected}");
            let local = jiff::Timestamp::from_millisecond(next).unwrap().in_tz("Europe/Paris").unwrap();
            assert_eq!((local.hour(), local.minute()), (9, 0), "{local}");
            previous = next;
        }
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reminders_in_at_and_every_are_delivered_in_the_members_time_zone() {
    beacon_http::install_crypto_provider();
    let t = TestApp::spawn().await;
    let (bob, general) = (t.member("bob"), t.channel("general"));

    let bad = remind(&t, bob, "timezone", json!([opt_str("name", "Mars/Olympus")])).await;
    assert!(bad.contains("is not a time zone name"), "{bad}");
    let tz = remind(&t, bob, "timezone", json!([opt_str("name", "Europe/Paris")])).await;
    assert!(tz.contains("Europe/Paris"), "{tz}");

    // in: delivered here, pinging Bob only — not the @everyone his text carries.
    let set = remind(&t, bob, "in", json!([opt_str("duration", "1s"), opt_str("text", "stretch @everyone")])).await;
    assert!(set.contains("Reminder set"), "{set}");
    wait_delivered(&t, general, "stretch").await;
    let request = t
        .fake
        .requests()
        .into_iter()
        .find(|r| r.body["content"].as_str().is_some_and(|c| c.contains("you asked to be reminded: stretch")))
        .unwrap_or_else(|| {
            panic!(
                "the reminder's request: {:?}",
                t.fake
                    .requests()
                    .iter()
                    .filter(|r| r.operation_id.as_deref() == Some("create_message"))
                    .map(|r| (&r.path, &r.body))
                    .collect::<Vec<_>>()
            )
        });
    assert_eq!(request.body["allowed_mentions"]["parse"], json!([]), "{}", request.body);
    assert_eq!(request.body["allowed_mentions"]["users"], json!([bob.to_string()]), "{}", request.body);

    // at: a date in Bob's zone; listed, then cancelled with its job.
    let set = remind(&t, bob, "at", json!([opt_str("when", "2027-06-01 09:00"), opt_str("text", "renew")])).await;
    assert!(set.contains("Europe/Paris"), "{set}");
    let at_id = last_id(&t).await;
    let (state, run_at) = job_of(&t, at_id).await.expect("a job");
    assert_eq!(state, "pending");
    assert_eq!(run_at, "2027-06-01T07:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond(), "09:00 CEST");
    assert!(remind(&t, bob, "list", json!([])).await.contains("renew"));
    assert!(remind(&t, bob, "cancel", json!([{"name": "id", "type": 4, "value": at_id}])).await.contains("cancelled"));
    assert_eq!(job_of(&t, at_id).await.map(|j| j.0), Some("cancelled".into()));
    assert!(remind(&t, bob, "list", json!([])).await.contains("no pending reminder"));
    let refused = remind(&t, bob, "at", json!([opt_str("when", "2029-01-01 09:00"), opt_str("text", "x")])).await;
    assert!(refused.contains("at most one year ahead"), "{refused}");

    // every: by DM, daily at 09:00 Paris time; a run on time is delivered, the next is scheduled.
    let set = remind(
        &t,
        bob,
        "every",
        json!([{"name": "days", "type": 4, "value": 1}, opt_str("time", "09:00"), opt_str("text", "standup"),
               {"name": "dm", "type": 5, "value": true}]),
    )
    .await;
    assert!(set.contains("every 1 day") && set.contains("by DM"), "{set}");
    let every_id = last_id(&t).await;
    let first = job_of(&t, every_id).await.expect("a job").1;
    let local = jiff::Timestamp::from_millisecond(first).unwrap().in_tz("Europe/Paris").unwrap();
    assert_eq!((local.hour(), local.minute()), (9, 0), "at 09:00 in Paris: {local}");
    make_due(&t, every_id, 0).await;
    let dm = loop {
        if let Some(dm) = t.fake.dm_channel(bob)
            && !delivered(&t, dm, "standup").is_empty()
        {
            break dm;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let next = loop {
        if let Some(("pending", run_at)) = job_of(&t, every_id).await.as_ref().map(|(s, r)| (s.as_str(), *r)) {
            break run_at;
        }
        assert!(tokio::time::Instant::now() < deadline, "the next run was never scheduled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(next > beacon_store::now_ms(), "the next run is ahead");
    let local = jiff::Timestamp::from_millisecond(next).unwrap().in_tz("Europe/Paris").unwrap();
    assert_eq!((local.hour(), local.minute()), (9, 0), "still 09:00 in Paris: {local}");

    // A run found two hours late (Beacon was down) is skipped, not sent; the next is scheduled.
    make_due(&t, every_id, 2 * 3_600_000).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some((state, run_at)) = job_of(&t, every_id).await
            && state == "pending"
            && run_at > beacon_store::now_ms()
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the late run was never rescheduled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered(&t, dm, "standup").len(), 1, "the late run was not delivered");

    // A member who cannot post here is refused; so is a 26th pending reminder.
    let mut quiet = t.invocation(bob, "remind", sub("in", json!([opt_str("duration", "1h"), opt_str("text", "x")])));
    quiet.member_permissions = Some(1 << 10); // VIEW_CHANNEL only
    let h = t.fake.invoke_command(quiet, Delivery::Http).await.unwrap();
    let out = text_of(&t.fake.wait_response(&h, WAIT).await.unwrap());
    assert!(out.contains("can't post in this channel"), "{out}");
    for n in 0..24 {
        let out = remind(&t, bob, "in", json!([opt_str("duration", "1h"), opt_str("text", &format!("n{n}"))])).await;
        assert!(out.contains("Reminder set"), "{n}: {out}");
    }
    let out = remind(&t, bob, "in", json!([opt_str("duration", "1h"), opt_str("text", "one too many")])).await;
    assert!(out.contains("already have 25 pending"), "{out}");

    // Bob's reminders are his data: exported, and erased with their jobs.
    let receipt = t.app().erase_member(t.guild.id, bob).await.unwrap();
    assert!(receipt.iter().any(|l| l.module == "reminders" && l.part == "reminders" && l.changed >= 25), "{receipt:?}");
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reminders WHERE guild_id = $1")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    assert_eq!(left, 0, "Bob's reminders are erased");
    assert_eq!(job_of(&t, every_id).await.map(|j| j.0), Some("cancelled".into()));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reminder_is_delivered_once_by_two_workers_and_after_a_restart() {
    beacon_http::install_crypto_provider();
    let mut t = TestApp::spawn().await;
    let (bob, general) = (t.member("bob"), t.channel("general"));
    // Other workers on the same database (without a gateway of their own: the fake allows one
    // identify per 5 s).
    let mut worker = (*t.app().config).clone();
    worker.discord.gateway_enabled = false;
    let config = Arc::new(worker);
    // A second worker on the same database.
    let second = beacon::run::start_with(config.clone(), Vec::new()).await.expect("a second worker");
    for n in 0..5 {
        let set =
            remind(&t, bob, "in", json!([opt_str("duration", "1s"), opt_str("text", &format!("twice? {n}"))])).await;
        assert!(set.contains("Reminder set"), "{set}");
    }
    for n in 0..5 {
        wait_delivered(&t, general, &format!("twice? {n}")).await;
    }
    second.shutdown().await;
    for n in 0..5 {
        assert_eq!(delivered(&t, general, &format!("twice? {n}")).len(), 1, "reminder {n} was delivered once");
    }

    // Due while Beacon is stopped: delivered once after the restart.
    let set = remind(&t, bob, "in", json!([opt_str("duration", "1h"), opt_str("text", "after restart")])).await;
    assert!(set.contains("Reminder set"), "{set}");
    let id = last_id(&t).await;
    let store = t.app().store.clone();
    if let Some(running) = t.running.take() {
        running.shutdown().await;
    }
    // It falls due while no worker runs.
    sqlx::query("UPDATE beacon_jobs SET run_at = $2 WHERE dedupe_key = $1 AND state = 'pending'")
        .bind(format!("reminder:{id}"))
        .bind(beacon_store::now_ms() - 1000)
        .execute(store.pool())
        .await
        .unwrap();
    assert!(delivered(&t, general, "after restart").is_empty());
    t.running = Some(beacon::run::start_with(Arc::clone(&config), Vec::new()).await.expect("restarted"));
    wait_delivered(&t, general, "after restart").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM reminders WHERE id = $1")
        .bind(id)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap()
        > 0
    {
        assert!(tokio::time::Instant::now() < deadline, "the delivered reminder was never removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered(&t, general, "after restart").len(), 1);
    t.stop().await;
}

/// One `beacon run` process of the binary, on the shared PostgreSQL database.
struct Process {
    child: std::process::Child,
    port: u16,
    _data: tempfile::TempDir,
}

fn start_process(fake: &beacon_testkit::FakeDiscord, database: &str, gateway: bool) -> Process {
    let data = tempfile::tempdir().unwrap();
    let port = crate::binary::free_port();
    let child = crate::binary::beacon()
        .arg("run")
        .env("BEACON_DATA_DIR", data.path())
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BEACON_DATABASE_URL", database)
        .env("BEACON_DISCORD_TOKEN", fake.bot_token())
        .env("BEACON_DISCORD_API_URL", fake.base_url())
        .env("BEACON_DISCORD_GATEWAY_URL", fake.gateway_url())
        .env("BEACON_DISCORD_GATEWAY_ENABLED", if gateway { "true" } else { "false" })
        .env("BEACON_DISCORD_PUBLIC_KEY", fake.public_key_hex())
        .env("BEACON_DISCORD_APPLICATION_ID", fake.application_id().to_string())
        .env("BEACON_EMBED_HUB_URL", "")
        // A killed worker's job is taken over this soon, well within Discord's nonce window.
        .env("BEACON_JOB_LEASE", "2s")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Process { child, port, _data: data }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL: a failing test leaves no process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every reminder is delivered exactly once by two real `beacon run` processes sharing one
/// PostgreSQL database and the fake Discord — in, at and every — also when the process running a
/// delivery is killed with SIGKILL (a) after Discord created the message but before its answer
/// arrived, and (b) while its request was still on the way: the job's lease expires, a process
/// takes it over and sends the run again with the same nonce, and Discord (`enforce_nonce`)
/// returns the message already posted instead of a second one.
#[tokio::test(flavor = "multi_thread")]
async fn two_processes_deliver_each_reminder_once_through_a_kill_9() {
    use beacon_testkit::{CommandInvocation, FakeDiscord, FakeOptions, Fault, FaultKind};
    beacon_http::install_crypto_provider();
    let Some(db) = beacon_testkit::services::ScratchDatabase::create().await else { return };
    let fake = FakeDiscord::start(FakeOptions { openapi_path: openapi(), ..FakeOptions::default() }).await.unwrap();
    let guild = fake.create_guild(guild_spec());
    let general = guild.channels.iter().find(|c| c.name == "general").unwrap().id;
    let bob = guild.members.iter().find(|m| m.username == "bob").unwrap().user_id;
    let sync_dir = tempfile::tempdir().unwrap();
    let mut sync = crate::binary::beacon();
    sync.args(["commands", "sync", "--guild", &guild.id.to_string()])
        .env("BEACON_DATA_DIR", sync_dir.path())
        .env("BEACON_DISCORD_TOKEN", fake.bot_token())
        .env("BEACON_DISCORD_API_URL", fake.base_url());
    let out = tokio::task::spawn_blocking(move || sync.output().unwrap()).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Two processes: the first with the gateway and the interactions endpoint, both run jobs.
    let mut processes = vec![start_process(&fake, &db.url, true), start_process(&fake, &db.url, false)];
    for p in &processes {
        crate::binary::wait_http(&format!("http://127.0.0.1:{}/health/ready", p.port)).await;
    }
    fake.set_interactions_endpoint(&format!("http://127.0.0.1:{}/interactions", processes[0].port));
    // Discord allows one identify per 5 s per bucket (the fake counts a faster one as a
    // violation), and a new process cannot know when a killed one identified: the test restarts
    // the gateway process no sooner than that after the previous one was ready.
    let mut gateway_ready = tokio::time::Instant::now();
    let store = beacon_store::Store::connect(&db.url).await.unwrap();
    let remind = |sub_name: &str, options: Value| {
        let invocation = CommandInvocation {
            guild_id: guild.id,
            channel_id: general,
            user_id: bob,
            name: "remind".into(),
            options: sub(sub_name, options),
            member_permissions: None,
        };
        let fake = fake.clone();
        async move {
            let h = fake.invoke_command(invocation, Delivery::Http).await.unwrap();
            text_of(&fake.wait_response(&h, WAIT).await.unwrap())
        }
    };
    let last_id = || {
        let store = store.clone();
        let guild = guild.id;
        async move {
            sqlx::query_scalar::<_, i64>("SELECT MAX(id) FROM reminders WHERE guild_id = $1")
                .bind(guild as i64)
                .fetch_one(store.pool())
                .await
                .unwrap()
        }
    };
    let make_due = |id: i64| {
        let store = store.clone();
        async move {
            sqlx::query("UPDATE beacon_jobs SET run_at = $2 WHERE dedupe_key = $1 AND state = 'pending'")
                .bind(format!("reminder:{id}"))
                .bind(beacon_store::now_ms())
                .execute(store.pool())
                .await
                .unwrap();
        }
    };
    let count = |text: &str| {
        let text = format!("you asked to be reminded: {text}");
        fake.messages(general).iter().filter(|m| m["content"].as_str().is_some_and(|c| c.contains(&text))).count()
    };
    let wait_count = |text: &'static str| {
        let fake = fake.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            let needle = format!("you asked to be reminded: {text}");
            while !fake.messages(general).iter().any(|m| m["content"].as_str().is_some_and(|c| c.contains(&needle))) {
                assert!(tokio::time::Instant::now() < deadline, "reminder {text:?} was never delivered");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // The guild is registered by the first process (GUILD_CREATE, or this interaction).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = remind("timezone", json!([opt_str("name", "America/New_York")])).await;
        if out.contains("America/New_York") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the first process never answered: {out}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // in, at and every, with both processes running.
    for n in 0..4 {
        let out = remind("in", json!([opt_str("duration", "1s"), opt_str("text", &format!("in {n}"))])).await;
        assert!(out.contains("Reminder set"), "{out}");
    }
    // 2027-03-14 is the day New York moves to summer time: 09:00 there is 13:00 UTC, not 14:00.
    let out = remind("at", json!([opt_str("when", "2027-03-14 09:00"), opt_str("text", "at pi day")])).await;
    assert!(out.contains("Reminder set"), "{out}");
    let at = last_id().await;
    let run_at: i64 = sqlx::query_scalar("SELECT run_at FROM beacon_jobs WHERE dedupe_key = $1")
        .bind(format!("reminder:{at}"))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(run_at, "2027-03-14T13:00:00Z".parse::<jiff::Timestamp>().unwrap().as_millisecond());
    make_due(at).await;
    let out = remind(
        "every",
        json!([{"name": "days", "type": 4, "value": 1}, opt_str("time", "09:00"),
                                     opt_str("text", "every standup")]),
    )
    .await;
    assert!(out.contains("every 1 day"), "{out}");
    let every = last_id().await;
    make_due(every).await;
    for text in ["in 0", "in 1", "in 2", "in 3", "at pi day", "every standup"] {
        wait_count(text).await;
    }
    // The recurring one's next run is pending, at 09:00 New York time.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let next = loop {
        let row = sqlx::query_as::<_, (String, i64)>(
            "SELECT state, run_at FROM beacon_jobs WHERE dedupe_key = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(format!("reminder:{every}"))
        .fetch_one(store.pool())
        .await
        .unwrap();
        if row.0 == "pending" {
            break row.1;
        }
        assert!(tokio::time::Instant::now() < deadline, "the next run was never scheduled: {row:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let local = jiff::Timestamp::from_millisecond(next).unwrap().in_tz("America/New_York").unwrap();
    assert_eq!((local.hour(), local.minute()), (9, 0), "{local}");

    // Which process holds a reminder's job, from its lease (`worker-<pid>:…`).
    let holder = |id: i64| {
        let store = store.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                let owner: Option<String> = sqlx::query_scalar(
                    "SELECT lease_owner FROM beacon_jobs WHERE dedupe_key = $1 AND state = 'running'",
                )
                .bind(format!("reminder:{id}"))
                .fetch_optional(store.pool())
                .await
                .unwrap()
                .flatten();
                if let Some(pid) = owner
                    .as_deref()
                    .and_then(|o| o.strip_prefix("worker-"))
                    .and_then(|o| o.split(':').next())
                    .and_then(|p| p.parse::<u32>().ok())
                {
                    return pid;
                }
                assert!(tokio::time::Instant::now() < deadline, "no process took reminder {id}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let done = |id: i64| {
        let store = store.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM reminders WHERE id = $1")
                .bind(id)
                .fetch_one(store.pool())
                .await
                .unwrap()
                > 0
            {
                assert!(tokio::time::Instant::now() < deadline, "reminder {id} was never finished");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    // (a) Killed after Discord created the message, before its answer arrived; (b) killed while
    // the request was held back before Discord acted.
    for (text, kind) in [
        ("killed after posting", FaultKind::DelayAfter(Duration::from_secs(60))),
        ("killed before posting", FaultKind::Delay(Duration::from_secs(600))),
    ] {
        fake.inject(Fault {
            method: Some("POST".into()),
            path_contains: format!("/channels/{general}/messages"),
            kind: kind.clone(),
            times: 1,
        });
        let out = remind("in", json!([opt_str("duration", "1s"), opt_str("text", text)])).await;
        assert!(out.contains("Reminder set"), "{out}");
        let id = last_id().await;
        let pid = holder(id).await;
        // Between the claim and the send: the request has met the fault.
        let acted_first = matches!(kind, FaultKind::DelayAfter(_));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while fake.faults().iter().any(|f| f.times > 0) || (acted_first && count(text) == 0) {
            assert!(tokio::time::Instant::now() < deadline, "{text}: the send never reached Discord");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let at = processes.iter().position(|p| p.child.id() == pid).expect("the lease holder is one of ours");
        drop(processes.remove(at)); // SIGKILL
        if at == 0 {
            tokio::time::sleep_until(gateway_ready + Duration::from_secs(6)).await;
        }
        let restarted = start_process(&fake, &db.url, at == 0);
        crate::binary::wait_http(&format!("http://127.0.0.1:{}/health/ready", restarted.port)).await;
        if at == 0 {
            gateway_ready = tokio::time::Instant::now();
            fake.set_interactions_endpoint(&format!("http://127.0.0.1:{}/interactions", restarted.port));
        }
        processes.insert(at, restarted);
        done(id).await;
        assert_eq!(count(text), 1, "{text}: delivered exactly once");
        let sends: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| {
                r.operation_id.as_deref() == Some("create_message")
                    && r.body["content"].as_str().is_some_and(|c| c.contains(text))
            })
            .collect();
        assert!(sends.iter().all(|r| r.body["enforce_nonce"] == json!(true)), "{sends:?}");
        assert!(sends.iter().all(|r| r.body["nonce"] == sends[0].body["nonce"]), "one nonce per run: {sends:?}");
    }
    // The run killed after posting was sent twice and shown once: Discord returned the first.
    let twice = fake
        .requests()
        .into_iter()
        .filter(|r| r.body["content"].as_str().is_some_and(|c| c.contains("killed after posting")))
        .count();
    assert_eq!(twice, 2, "the process that took over sent the run again");

    for text in ["in 0", "in 1", "in 2", "in 3", "at pi day", "every standup"] {
        assert_eq!(count(text), 1, "{text} delivered exactly once");
    }
    drop(processes);
    fake.assert_no_violations();
    db.drop_database().await;
}
