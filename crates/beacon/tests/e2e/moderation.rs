//! Moderation (#19) through the fake Discord: each command and the REST calls it makes (the
//! reason in `X-Audit-Log-Reason`, the DM before a kick or ban), cases numbered per guild with
//! an append-only history, the mod-log message edited in place, a DM that fails without
//! blocking the action, and refusals that say why (owner, role hierarchy, the bot's own rank).

use std::time::Duration;

use beacon_moderation::{CaseKind, DmStatus, Repo};
use beacon_testkit::{Delivery, InteractionOutcome, RecordedRequest};
use serde_json::{Value, json};

use crate::harness::*;

pub const BAN_MEMBERS: u64 = 1 << 2;
pub const KICK_MEMBERS: u64 = 1 << 1;
pub const MODERATE_MEMBERS: u64 = 1 << 40;

pub fn opt_user(name: &str, id: u64) -> Value {
    json!({"name": name, "type": 6, "value": id.to_string()})
}

/// A guild where the "staff" role moderates (Discord's moderation permissions, Beacon's staff)
/// and the mod log is #mod-log. Returns the moderator's id.
pub async fn moderated(t: &TestApp) -> u64 {
    let staff = t.role("staff");
    t.fake.set_role_permissions(t.guild.id, staff, BAN_MEMBERS | KICK_MEMBERS | MODERATE_MEMBERS).unwrap();
    let moderator = t.fake.add_member(t.guild.id, None, "mod", vec![staff]).unwrap();
    for (key, value) in
        [("core.staff_roles", staff.to_string()), ("moderation.log_channel", t.channel("mod-log").to_string())]
    {
        let out = t
            .command(
                t.owner(),
                "config",
                sub("set", json!([opt_str("key", key), opt_str("value", &value)])),
                Delivery::Http,
            )
            .await;
        assert!(text_of(&out).contains(key), "{}", text_of(&out));
    }
    moderator
}

pub async fn act(t: &TestApp, user: u64, name: &str, options: Value) -> InteractionOutcome {
    t.command(user, name, options, Delivery::Gateway).await
}

fn requests(t: &TestApp, op: &str) -> Vec<RecordedRequest> {
    t.fake.requests().into_iter().filter(|r| r.operation_id.as_deref() == Some(op)).collect()
}

fn position(t: &TestApp, pred: impl Fn(&RecordedRequest) -> bool) -> usize {
    t.fake.requests().iter().position(pred).expect("request made")
}

/// Mod-log messages whose embed title starts with `title`.
fn log_messages(t: &TestApp, title: &str) -> Vec<Value> {
    t.fake
        .messages(t.channel("mod-log"))
        .into_iter()
        .filter(|m| m["embeds"][0]["title"].as_str().is_some_and(|s| s.starts_with(title)))
        .collect()
}

async fn wait_log(t: &TestApp, title: &str) -> Value {
    let title = title.to_owned();
    t.fake
        .wait_for_message(t.channel("mod-log"), WAIT, |m| {
            m["embeds"][0]["title"].as_str().is_some_and(|s| s.starts_with(&title))
        })
        .await
        .unwrap_or_else(|_| panic!("no mod-log message {title}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_makes_its_case_and_rest_calls() {
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    let g = t.guild.id;
    let bob = t.member("bob");
    let carol = t.fake.add_member(g, None, "carol", vec![]).unwrap();
    let dave = t.fake.add_member(g, None, "dave", vec![]).unwrap();
    let eve = t.fake.add_member(g, None, "eve", vec![]).unwrap();
    let repo = Repo::new(t.app().store.guild(g));

    // /warn: case #1, DM sent, one mod-log message.
    let out = act(&t, moderator, "warn", json!([opt_user("user", bob), opt_str("reason", "spamming links")])).await;
    assert!(is_ephemeral(&out));
    assert_eq!(text_of(&out).trim(), format!("Case #1: <@{bob}> warned. DM: sent."));
    let dm = t.fake.dm_channel(bob).expect("bob got a DM");
    let dms = t.fake.messages(dm);
    assert!(dms[0]["content"].as_str().unwrap().starts_with("You were warned in **Test Guild**."), "{dms:?}");
    let logged = wait_log(&t, "Case #1 · Warning").await;
    assert_eq!(logged["embeds"][0]["fields"][2]["value"], "spamming links");

    // /timeout: Discord's member timeout with the reason in the audit log; its end is a job.
    let out = act(
        &t,
        moderator,
        "timeout",
        json!([opt_user("user", carol), opt_str("duration", "1h30m"), opt_str("reason", "heated")]),
    )
    .await;
    assert_eq!(text_of(&out).trim(), format!("Case #2: <@{carol}> timed out for 1h 30m. DM: sent."));
    let patch = requests(&t, "update_guild_member").pop().expect("PATCH member");
    assert!(patch.body["communication_disabled_until"].is_string());
    assert_eq!(patch.audit_log_reason.as_deref(), Some(format!("Case #2 by {moderator}: heated").as_str()));
    assert!(t.fake.member_timeout(g, carol).is_some());
    let jobs = beacon_jobs::Jobs::new(t.app().store.clone());
    let job = jobs.by_key(g, &format!("timeout:{carol}")).await.unwrap().expect("timeout job");
    assert_eq!(job.kind, beacon_moderation::JOB_TIMEOUT);
    let case = repo.get(2).await.unwrap().unwrap();
    assert_eq!((case.duration_ms, job.run_at), (Some(5_400_000), case.ends_at.unwrap()));

    // /kick: the DM goes out before the kick (a DM after it would fail).
    let out = act(&t, moderator, "kick", json!([opt_user("user", dave), opt_str("reason", "alt account")])).await;
    assert!(text_of(&out).contains("kicked. DM: sent."), "{}", text_of(&out));
    let dave_dm = t.fake.dm_channel(dave).expect("dave got a DM");
    let dm_at = position(&t, |r| r.method == "POST" && r.path == format!("/channels/{dave_dm}/messages"));
    let kick_at = position(&t, |r| r.operation_id.as_deref() == Some("delete_guild_member"));
    assert!(dm_at < kick_at, "DM first, then the kick");
    assert!(!t.fake.is_member(g, dave));

    // /ban for a week, deleting a day of messages: the unban is a durable job.
    let out = act(
        &t,
        moderator,
        "ban",
        json!([
            opt_user("user", eve),
            opt_str("duration", "7d"),
            opt_str("reason", "raid"),
            opt_str("delete_messages", "86400")
        ]),
    )
    .await;
    assert!(text_of(&out).contains("banned for 7d. DM: sent."), "{}", text_of(&out));
    let ban = requests(&t, "ban_user_from_guild").pop().expect("PUT ban");
    assert_eq!(ban.body["delete_message_seconds"], 86400);
    assert_eq!(ban.audit_log_reason.as_deref(), Some(format!("Case #4 by {moderator}: raid").as_str()));
    assert_eq!(t.fake.bans(g).len(), 1);
    let unban = jobs.by_key(g, &format!("ban:{eve}")).await.unwrap().expect("unban job");
    assert_eq!(unban.state, beacon_jobs::JobState::Pending);

    // /case edit: the reason changes, the history keeps both, the one message is edited.
    let out = act(
        &t,
        moderator,
        "case",
        sub("edit", json!([{"name": "number", "type": 4, "value": 1}, opt_str("reason", "spamming invite links")])),
    )
    .await;
    assert!(text_of(&out).contains("Case #1 now reads: spamming invite links"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let messages = log_messages(&t, "Case #1 ·");
        assert_eq!(messages.len(), 1, "one mod-log message per case");
        if messages[0]["embeds"][0]["fields"][2]["value"] == "spamming invite links" {
            assert!(messages[0]["edited_timestamp"].is_string());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the mod-log message was never edited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let events: Vec<String> =
        repo.events(1).await.unwrap().into_iter().map(|e| format!("{}: {}", e.kind, e.detail)).collect();
    assert_eq!(events, vec!["created: spamming links", "dm: sent", "reason: spamming invite links"]);
    let view = act(&t, moderator, "case", sub("view", json!([{"name": "number", "type": 4, "value": 1}]))).await;
    assert!(text_of(&view).contains("reason: spamming invite links"), "{}", text_of(&view));

    // /unban ends the temporary ban early and cancels its job.
    let out = act(&t, moderator, "unban", json!([opt_user("user", eve), opt_str("reason", "appeal by mail")])).await;
    assert!(text_of(&out).contains("Case #5:"), "{}", text_of(&out));
    assert!(t.fake.bans(g).is_empty());
    let ban_case = repo.get(4).await.unwrap().unwrap();
    assert_eq!(ban_case.end_note.as_deref(), Some("lifted early by case #5"));
    assert_eq!(jobs.by_key(g, &format!("ban:{eve}")).await.unwrap().unwrap().state, beacon_jobs::JobState::Cancelled);
    assert_eq!(repo.get(5).await.unwrap().unwrap().dm_status, DmStatus::NotSent, "no DM to someone not in the server");

    // /untimeout, /note (never a DM), /history, /case list.
    act(&t, moderator, "untimeout", json!([opt_user("user", carol)])).await;
    assert_eq!(t.fake.member_timeout(g, carol), None);
    assert_eq!(repo.get(2).await.unwrap().unwrap().end_note.as_deref(), Some("lifted early by case #6"));
    let before = t.fake.messages(dm).len();
    let out = act(&t, moderator, "note", json!([opt_user("user", bob), opt_str("text", "asked about refunds")])).await;
    assert_eq!(text_of(&out).trim(), format!("Case #7: Note added to <@{bob}>."));
    assert_eq!(t.fake.messages(dm).len(), before, "notes are not sent to the member");
    let history = text_of(&act(&t, moderator, "history", json!([opt_user("user", bob)])).await);
    assert!(
        history.contains("2 in all") && history.contains("`#7` Note") && history.contains("`#1` Warning"),
        "{history}"
    );
    let list = text_of(&act(&t, moderator, "case", sub("list", json!([opt_str("type", "ban")]))).await);
    assert!(list.contains("`#4` Ban") && !list.contains("`#1`"), "{list}");
    let kinds: Vec<CaseKind> =
        repo.list(Default::default(), 10).await.unwrap().into_iter().rev().map(|c| c.kind).collect();
    use CaseKind::*;
    assert_eq!(kinds, vec![Warn, Timeout, Kick, Ban, Unban, Untimeout, Note]);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dm_never_blocks_the_action() {
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    let bob = t.member("bob");
    t.fake.set_dms_closed(bob, true);
    let out = act(&t, moderator, "kick", json!([opt_user("user", bob), opt_str("reason", "spam")])).await;
    let text = text_of(&out);
    assert!(text.contains("kicked") && text.contains("DM: failed: Discord refused it (50007)"), "{text}");
    assert!(!t.fake.is_member(t.guild.id, bob), "kicked all the same");
    let case = Repo::new(t.app().store.guild(t.guild.id)).get(1).await.unwrap().unwrap();
    assert_eq!(case.dm_status, DmStatus::Failed);
    assert!(case.dm_detail.unwrap().contains("50007"));
    let logged = wait_log(&t, "Case #1 · Kick").await;
    let dm_field = logged["embeds"][0]["fields"].as_array().unwrap().iter().find(|f| f["name"] == "DM").cloned();
    assert!(dm_field.unwrap()["value"].as_str().unwrap().contains("50007"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_why_and_nothing_is_done() {
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    let g = t.guild.id;
    let alice = t.member("alice-admin");
    let refusal = |out: &InteractionOutcome| text_of(out);

    let out = act(&t, moderator, "ban", json!([opt_user("user", t.owner())])).await;
    assert!(refusal(&out).contains("owns this server"), "{}", refusal(&out));
    let out = act(&t, moderator, "kick", json!([opt_user("user", moderator)])).await;
    assert!(refusal(&out).contains("You can't moderate yourself"), "{}", refusal(&out));
    // alice's admin role above the moderator's staff role (and above the bot's).
    t.fake.set_role_position(g, t.role("admin"), 10).unwrap();
    let out = act(&t, moderator, "kick", json!([opt_user("user", alice)])).await;
    assert!(refusal(&out).contains("is not below yours"), "{}", refusal(&out));
    // The owner outranks everyone, but the bot does not outrank alice.
    let out = act(&t, t.owner(), "timeout", json!([opt_user("user", alice), opt_str("duration", "10m")])).await;
    assert!(refusal(&out).contains("is not below mine") && refusal(&out).contains("Move my role"), "{}", refusal(&out));
    let out =
        act(&t, moderator, "timeout", json!([opt_user("user", t.member("bob")), opt_str("duration", "soon")])).await;
    assert!(refusal(&out).contains("is not a duration"), "{}", refusal(&out));
    for op in ["ban_user_from_guild", "delete_guild_member", "update_guild_member"] {
        assert!(requests(&t, op).is_empty(), "{op} was never attempted");
    }
    assert!(Repo::new(t.app().store.guild(g)).get(1).await.unwrap().is_none(), "refusals make no case");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_role_may_moderate_without_being_staff() {
    let t = TestApp::spawn().await;
    let staff = t.role("staff");
    t.fake.set_role_permissions(t.guild.id, staff, MODERATE_MEMBERS).unwrap();
    let helper = t.fake.add_member(t.guild.id, None, "helper", vec![staff]).unwrap();
    let bob = t.member("bob");
    let out = act(&t, helper, "warn", json!([opt_user("user", bob), opt_str("reason", "spam")])).await;
    assert!(text_of(&out).contains("Only staff and moderators"), "{}", text_of(&out));
    let set = sub("set", json!([opt_str("key", "moderation.moderator_roles"), opt_str("value", &staff.to_string())]));
    t.command(t.owner(), "config", set, Delivery::Http).await;
    let out = act(&t, helper, "warn", json!([opt_user("user", bob), opt_str("reason", "spam")])).await;
    assert!(text_of(&out).contains("Case #1:"), "{}", text_of(&out));
    t.stop().await;
}

/// One `beacon run` process against `fake`, keeping its data in `dir` (shared by the workers).
fn worker(fake: &beacon_testkit::FakeDiscord, dir: &std::path::Path, gateway: bool) -> (std::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_beacon"));
    for (key, _) in std::env::vars() {
        if key.starts_with("BEACON_") {
            cmd.env_remove(key);
        }
    }
    cmd.arg("run")
        .env("BEACON_DATA_DIR", dir)
        .env("BEACON_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("BEACON_DISCORD_TOKEN", fake.bot_token())
        .env("BEACON_DISCORD_API_URL", fake.base_url())
        .env("BEACON_DISCORD_GATEWAY_URL", fake.gateway_url())
        .env("BEACON_DISCORD_PUBLIC_KEY", fake.public_key_hex())
        .env("BEACON_DISCORD_APPLICATION_ID", fake.application_id().to_string())
        .env("BEACON_DISCORD_GATEWAY_ENABLED", gateway.to_string())
        .env("BEACON_JOB_LEASE", "2s")
        .env("BEACON_LOG_LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    (cmd.spawn().expect("beacon starts"), port)
}

async fn wait_ready(port: u16) {
    beacon_testkit::install_tls_provider();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let url = format!("http://127.0.0.1:{port}/health/live");
    while !reqwest::get(&url).await.map(|r| r.status().is_success()).unwrap_or(false) {
        assert!(tokio::time::Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A 5-second temporary ban with two workers sharing the database; the worker that took the
/// unban is killed with SIGKILL in the middle of it (while it asks Discord about the ban). The
/// other worker takes the job over once the lease lapses: the ban is lifted exactly once, and
/// the case records when.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_ban_is_lifted_exactly_once_by_two_workers_one_killed() {
    use beacon_testkit::{FakeDiscord, FakeOptions, Fault, FaultKind};
    let fake = FakeDiscord::start(FakeOptions { openapi_path: openapi(), ..FakeOptions::default() }).await.unwrap();
    let guild = fake.create_guild(guild_spec());
    let dir = tempfile::tempdir().unwrap();
    let (mut first, port) = worker(&fake, dir.path(), true);
    wait_ready(port).await;
    let (mut second, second_port) = worker(&fake, dir.path(), false);
    wait_ready(second_port).await;
    fake.set_interactions_endpoint(&format!("http://127.0.0.1:{port}/interactions"));
    fake.wait_for_shards(1, Duration::from_secs(30)).await.unwrap();
    let bob = guild.members.iter().find(|m| m.username == "bob").unwrap().user_id;
    let general = guild.channels.iter().find(|c| c.name == "general").unwrap().id;
    let invocation = beacon_testkit::CommandInvocation {
        guild_id: guild.id,
        channel_id: general,
        user_id: guild.owner_id,
        name: "ban".into(),
        options: json!([opt_user("user", bob), opt_str("duration", "5s"), opt_str("reason", "cool off")]),
        member_permissions: None,
    };
    let handle = fake.invoke_command(invocation, Delivery::Http).await.unwrap();
    let out = fake.wait_response(&handle, WAIT).await.unwrap();
    assert!(text_of(&out).contains("Case #1:") && text_of(&out).contains("banned for 5s"), "{}", text_of(&out));
    assert_eq!(fake.bans(guild.id).len(), 1);
    // Whoever runs the unban first hangs on its question to Discord: that is where it dies.
    fake.inject(Fault {
        method: Some("GET".into()),
        path_contains: format!("/bans/{bob}"),
        kind: FaultKind::Delay(Duration::from_secs(30)),
        times: 1,
    });
    let store = beacon_store::Store::connect(&format!("sqlite://{}/beacon.db", dir.path().display())).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let owner = loop {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT state, lease_owner FROM beacon_jobs WHERE kind = 'moderation.unban'")
                .fetch_optional(store.pool())
                .await
                .unwrap();
        if let Some((state, Some(owner))) = row
            && state == "running"
        {
            break owner;
        }
        assert!(tokio::time::Instant::now() < deadline, "no worker took the unban job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let pid: u32 = owner.trim_start_matches("worker-").split(':').next().unwrap().parse().unwrap();
    let (victim, survivor) = if pid == first.id() { (&mut first, &mut second) } else { (&mut second, &mut first) };
    assert_eq!(victim.id(), pid, "the lease names one of the two workers");
    victim.kill().expect("kill -9");
    victim.wait().unwrap();

    let repo = Repo::new(store.guild(guild.id));
    let ended = loop {
        let case = repo.get(1).await.unwrap().unwrap();
        if case.ended_at.is_some() {
            break case;
        }
        assert!(tokio::time::Instant::now() < deadline, "the other worker never lifted the ban");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(fake.bans(guild.id).is_empty(), "bob is no longer banned");
    assert_eq!(ended.end_note.as_deref(), Some("ban lifted"));
    assert!(ended.ended_at.unwrap() >= ended.ends_at.unwrap(), "not before its time");
    let unbans = || {
        fake.requests()
            .into_iter()
            .filter(|r| r.operation_id.as_deref() == Some("unban_user_from_guild"))
            .collect::<Vec<_>>()
    };
    // Let a straggler (there must be none) show itself before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(unbans().len(), 1, "lifted exactly once: {:?}", unbans());
    assert_eq!(unbans()[0].status, 204);
    assert_eq!(fake.audit_log(guild.id).iter().filter(|e| e["action_type"] == 23).count(), 1);
    let (state, attempts): (String, i64) =
        sqlx::query_as("SELECT state, attempts FROM beacon_jobs WHERE kind = 'moderation.unban'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    // The killed attempt, then the one that finished; on a loaded machine a 2-second lease can
    // also lapse under the survivor and be taken again, which the once-only checks above cover.
    assert_eq!(state, "done");
    assert!(attempts >= 2, "the killed attempt, then the one that finished: {attempts}");
    let events: Vec<String> = repo.events(1).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(events.iter().filter(|k| *k == "ended").count(), 1, "{events:?}");
    let _ = std::process::Command::new("kill").args(["-TERM", &survivor.id().to_string()]).status();
    let _ = survivor.wait();
    store.close().await;
    fake.assert_no_violations();
}

/// Waits until case `number` exists.
async fn wait_case(t: &TestApp, number: i64) -> beacon_moderation::Case {
    let repo = Repo::new(t.app().store.guild(t.guild.id));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(case) = repo.get(number).await.unwrap() {
            return case;
        }
        assert!(tokio::time::Instant::now() < deadline, "case #{number} was never recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_in_discords_ui_become_cases_once() {
    use beacon_moderation::Source;
    use beacon_testkit::UiAction;
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    let g = t.guild.id;
    let bob = t.member("bob");
    let carol = t.fake.add_member(g, None, "carol", vec![]).unwrap();
    t.fake.moderate_in_ui(g, moderator, UiAction::Ban, bob, Some("raid from the UI")).unwrap();
    let case = wait_case(&t, 1).await;
    assert_eq!((case.kind, case.source, case.moderator_id), (CaseKind::Ban, Source::Discord, moderator));
    assert_eq!(case.reason, "raid from the UI");
    assert!(case.audit_entry_id.is_some());
    wait_log(&t, "Case #1 · Ban").await;
    // A timeout set in the UI: a case with its duration, and its end recorded by a job.
    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string();
    t.fake.moderate_in_ui(g, moderator, UiAction::Timeout(until), carol, None).unwrap();
    let case = wait_case(&t, 2).await;
    assert_eq!(case.kind, CaseKind::Timeout);
    assert!(case.duration_ms.is_some_and(|d| d > 7_000_000 && d <= 7_200_000), "{:?}", case.duration_ms);
    let jobs = beacon_jobs::Jobs::new(t.app().store.clone());
    assert!(jobs.by_key(g, &format!("timeout:{carol}")).await.unwrap().is_some());
    // The bot's own action is one case: its audit entry is matched, not recorded again.
    act(&t, moderator, "untimeout", json!([opt_user("user", carol), opt_str("reason", "calmed down")])).await;
    let repo = Repo::new(t.app().store.guild(g));
    let deadline = tokio::time::Instant::now() + WAIT;
    while repo.get(3).await.unwrap().unwrap().audit_entry_id.is_none() {
        assert!(tokio::time::Instant::now() < deadline, "the bot's audit entry was never matched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(repo.list(Default::default(), 10).await.unwrap().len(), 3, "no duplicate of the bot's own action");
    assert_eq!(repo.get(2).await.unwrap().unwrap().end_note.as_deref(), Some("lifted early by case #3"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_escalate_to_a_timeout_as_its_own_case() {
    use beacon_moderation::Source;
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    for (key, value) in [("moderation.escalation_warnings", "2"), ("moderation.escalation_duration", "1h")] {
        t.command(
            t.owner(),
            "config",
            sub("set", json!([opt_str("key", key), opt_str("value", value)])),
            Delivery::Http,
        )
        .await;
    }
    let bob = t.member("bob");
    let first = act(&t, moderator, "warn", json!([opt_user("user", bob), opt_str("reason", "spam")])).await;
    assert!(!text_of(&first).contains("Escalation"), "{}", text_of(&first));
    let second = act(&t, moderator, "warn", json!([opt_user("user", bob), opt_str("reason", "more spam")])).await;
    assert!(
        text_of(&second).contains("Escalation: Case #3:") && text_of(&second).contains("timed out for 1h"),
        "{}",
        text_of(&second)
    );
    let case = Repo::new(t.app().store.guild(t.guild.id)).get(3).await.unwrap().unwrap();
    assert_eq!((case.kind, case.source, case.related_case), (CaseKind::Timeout, Source::Escalation, Some(2)));
    assert_eq!(case.moderator_id, t.fake.application_id(), "Beacon itself applied it");
    assert!(case.reason.contains("2 warnings within 30d (#1, #2)"), "{}", case.reason);
    assert!(t.fake.member_timeout(t.guild.id, bob).is_some());
    // The count starts again after an escalation.
    let third = act(&t, moderator, "warn", json!([opt_user("user", bob), opt_str("reason", "again")])).await;
    assert!(!text_of(&third).contains("Escalation"), "{}", text_of(&third));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_warnings_at_once_escalate_once() {
    use beacon_moderation::{Moderation, NewCase};
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "moderation.escalation_warnings"), opt_str("value", "2")])),
        Delivery::Http,
    )
    .await;
    let bob = t.member("bob");
    let repo = Repo::new(t.app().store.guild(t.guild.id));
    let now = beacon_store::now_ms();
    let first = repo.create(&NewCase::new(CaseKind::Warn, bob, moderator, "spam"), now).await.unwrap();
    let second = repo.create(&NewCase::new(CaseKind::Warn, bob, moderator, "more spam"), now).await.unwrap();
    // Two workers each finish one of the two warnings and look at the same run of warnings.
    let a = Moderation::new(t.app().clone(), Default::default());
    let b = Moderation::new(t.app().clone(), Default::default());
    let guild = t.app().store.guild(t.guild.id);
    let (x, y) = tokio::join!(a.escalate(&guild, &first), b.escalate(&guild, &second));
    let escalated: Vec<_> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    assert_eq!(escalated.len(), 1, "one escalation for one run of warnings: {escalated:?}");
    let timeouts = repo.list(Default::default(), 50).await.unwrap();
    assert_eq!(timeouts.iter().filter(|c| c.kind == CaseKind::Timeout).count(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_member_appeals_and_the_appeal_is_accepted() {
    use beacon_moderation::Source;
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    let g = t.guild.id;
    let appeals = t.channel("support");
    let set = sub("set", json!([opt_str("key", "moderation.appeals_channel"), opt_str("value", &appeals.to_string())]));
    t.command(t.owner(), "config", set, Delivery::Http).await;
    let bob = t.member("bob");
    let out = act(&t, moderator, "ban", json!([opt_user("user", bob), opt_str("reason", "spam")])).await;
    assert!(text_of(&out).contains("Case #1:"), "{}", text_of(&out));

    // The ban DM carries the Appeal button; bob, no longer in the server, opens its form.
    let dm = t.fake.dm_channel(bob).expect("ban DM");
    let message = t.fake.messages(dm).pop().unwrap();
    let custom_id = message["components"][0]["components"][0]["custom_id"].as_str().unwrap().to_owned();
    assert_eq!(custom_id, format!("moderation:dm:{g}:appeal:1"));
    let message_id: u64 = message["id"].as_str().unwrap().parse().unwrap();
    let h = t.fake.click_dm_button(bob, dm, message_id, &custom_id, Delivery::Gateway).await.unwrap();
    let form = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!(form.kind, 9, "a form: {form:?}");
    let h = t
        .fake
        .submit_dm_modal(bob, dm, &custom_id, &[("appeal", "I am sorry, it will not happen again.")], Delivery::Gateway)
        .await
        .unwrap();
    let sent = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert!(text_of(&sent).contains("sent to the server's moderators"), "{}", text_of(&sent));
    // One open appeal per case.
    let h = t.fake.click_dm_button(bob, dm, message_id, &custom_id, Delivery::Http).await.unwrap();
    let again = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert!(text_of(&again).contains("already have an open appeal"), "{}", text_of(&again));

    // The moderators see it with Accept and Deny; Accept lifts the ban as its own case.
    let posted =
        t.fake.wait_for_message(appeals, WAIT, |m| m["embeds"][0]["title"] == "Appeal of case #1").await.unwrap();
    assert!(
        text_of(&InteractionOutcome { kind: 4, data: posted.clone(), followups: vec![] })
            .contains("I am sorry, it will not happen again.")
    );
    let posted_id: u64 = posted["id"].as_str().unwrap().parse().unwrap();
    let h = t
        .fake
        .click_button(g, appeals, moderator, posted_id, "moderation:appeal-accept:1", Delivery::Gateway)
        .await
        .unwrap();
    let decided = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert!(text_of(&decided).contains("unbanned in case #2"), "{}", text_of(&decided));
    assert!(t.fake.bans(g).is_empty(), "bob is unbanned");
    let repo = Repo::new(t.app().store.guild(g));
    let unban = repo.get(2).await.unwrap().unwrap();
    assert_eq!((unban.kind, unban.source, unban.related_case), (CaseKind::Unban, Source::Appeal, Some(1)));
    let notes: Vec<String> =
        repo.events(1).await.unwrap().into_iter().filter(|e| e.kind == "appeal").map(|e| e.detail).collect();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[1].contains("accepted") && notes[1].contains("case #2"), "{notes:?}");
    // Decided once: a second click changes nothing.
    let h = t
        .fake
        .click_button(g, appeals, moderator, posted_id, "moderation:appeal-deny:1", Delivery::Http)
        .await
        .unwrap();
    assert!(text_of(&t.fake.wait_response(&h, WAIT).await.unwrap()).contains("already decided"));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_menus_open_a_form_that_acts() {
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    let (g, general) = (t.guild.id, t.channel("general"));
    let bob = t.member("bob");
    let menu = |name: &str| beacon_testkit::CommandInvocation {
        name: name.into(),
        ..t.invocation(moderator, name, json!([]))
    };
    let h = t.fake.invoke_user_command(menu("Timeout"), bob, Delivery::Gateway).await.unwrap();
    let form = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert_eq!(form.kind, 9);
    let custom_id = form.data["custom_id"].as_str().unwrap().to_owned();
    assert_eq!(custom_id, format!("moderation:menu:timeout:{bob}"));
    let fields = [("duration", "10m"), ("reason", "flooding")];
    let h = t.fake.submit_modal(g, general, moderator, &custom_id, &fields, Delivery::Gateway).await.unwrap();
    let out = t.fake.wait_response(&h, WAIT).await.unwrap();
    assert!(text_of(&out).contains(&format!("Case #1: <@{bob}> timed out for 10m.")), "{}", text_of(&out));
    assert!(t.fake.member_timeout(g, bob).is_some());
    let h = t.fake.invoke_user_command(menu("Warn"), bob, Delivery::Http).await.unwrap();
    let form = t.fake.wait_response(&h, WAIT).await.unwrap();
    let custom_id = form.data["custom_id"].as_str().unwrap().to_owned();
    let h =
        t.fake.submit_modal(g, general, moderator, &custom_id, &[("reason", "be nice")], Delivery::Http).await.unwrap();
    assert!(text_of(&t.fake.wait_response(&h, WAIT).await.unwrap()).contains("Case #2:"));
    t.stop().await;
}

/// A timeout longer than Discord's 28 days: applied for 28 days, then renewed by its job before
/// Discord would lift it (here the job is made due and the member's timeout nearly over, as
/// four weeks would leave them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_beyond_28_days_is_renewed_by_its_job() {
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    let g = t.guild.id;
    let bob = t.member("bob");
    let out = act(&t, moderator, "timeout", json!([opt_user("user", bob), opt_str("duration", "60d")])).await;
    assert!(text_of(&out).contains("timed out for 60d"), "{}", text_of(&out));
    let until = |t: &TestApp| {
        let text = t.fake.member_timeout(g, bob).expect("timed out");
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    };
    let now = beacon_store::now_ms();
    let first = until(&t);
    assert!(first > now + 27 * 86_400_000 && first <= now + 28 * 86_400_000, "28 days at most");
    let jobs = beacon_jobs::Jobs::new(t.app().store.clone());
    let job = jobs.by_key(g, &format!("timeout:{bob}")).await.unwrap().unwrap();
    assert_eq!(job.run_at, first - beacon_moderation::RENEW_AHEAD_MS, "renewed an hour before it would end");
    // Four weeks later, in short: Discord's timeout is nearly over and the renewal is due.
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30)).to_string();
    t.fake.set_member_timeout(g, bob, Some(&soon)).unwrap();
    sqlx::query("UPDATE beacon_jobs SET run_at = $1 WHERE id = $2")
        .bind(beacon_store::now_ms())
        .bind(job.id)
        .execute(t.app().store.pool())
        .await
        .unwrap();
    let repo = Repo::new(t.app().store.guild(g));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !repo.events(1).await.unwrap().iter().any(|e| e.kind == "renewed") {
        assert!(tokio::time::Instant::now() < deadline, "the timeout was never renewed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(until(&t) > beacon_store::now_ms() + 27 * 86_400_000, "renewed for up to 28 days again");
    let patches = requests(&t, "update_guild_member");
    assert_eq!(patches.len(), 2);
    assert!(patches[1].audit_log_reason.as_deref().unwrap().contains("timeout renewed"));
    let next = jobs.by_key(g, &format!("timeout:{bob}")).await.unwrap().unwrap();
    assert_eq!(next.state, beacon_jobs::JobState::Pending);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cases_export_as_csv() {
    let t = TestApp::spawn().await;
    let moderator = moderated(&t).await;
    let bob = t.member("bob");
    act(&t, moderator, "warn", json!([opt_user("user", bob), opt_str("reason", "=HYPERLINK(\"x\"), spam")])).await;
    act(&t, moderator, "note", json!([opt_user("user", bob), opt_str("text", "second")])).await;
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let out = t
        .command(
            moderator,
            "export",
            sub("cases", json!([opt_str("from", &today), opt_str("to", &today)])),
            Delivery::Gateway,
        )
        .await;
    assert!(text_of(&out).contains("2 case(s)"), "{}", text_of(&out));
    let csv = beacon_moderation::cases_csv(
        &Repo::new(t.app().store.guild(t.guild.id)).created_between(0, i64::MAX).await.unwrap(),
    )
    .unwrap();
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], beacon_moderation::CASE_COLUMNS.join(","));
    assert!(lines[1].starts_with("1,warn,") && lines[1].contains("\"'=HYPERLINK(\"\"x\"\"), spam\""), "{}", lines[1]);
    assert!(lines[2].starts_with("2,note,"), "{}", lines[2]);
    t.stop().await;
}
