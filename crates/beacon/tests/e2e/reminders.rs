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
