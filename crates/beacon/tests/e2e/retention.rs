//! Retention per kind of data: each kind's per-server setting is shown by `/config show` and
//! changed by `/config set`; housekeeping's pass, run with the clock moved forward, expires
//! answer content after the server's period and audit records after two years, and nothing
//! sooner.

use beacon_testkit::Delivery;
use serde_json::json;

use crate::harness::*;

const DAY_MS: i64 = 86_400_000;

async fn count(t: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).bind(t.guild.id as i64).fetch_one(t.app().store.pool()).await.expect("count")
}

async fn config(t: &TestApp, options: serde_json::Value) -> String {
    text_of(&t.command(t.owner(), "config", options, Delivery::Http).await)
}

#[tokio::test]
async fn each_kind_of_data_expires_after_its_retention() {
    beacon_http::install_crypto_provider();
    let t = TestApp::spawn().await;
    let bob = t.member("bob");
    let mut shown = String::new();
    for page in 1..=10 {
        shown.push_str(&config(&t, sub("show", json!([{"name": "page", "type": 4, "value": page}]))).await);
    }
    assert!(shown.contains("core.audit_retention"), "/config shows the audit retention: {shown}");
    assert!(shown.contains("support.content_retention"), "/config shows the answer content retention");
    let set = config(&t, sub("set", json!([opt_str("key", "support.audit_content"), opt_str("value", "true")]))).await;
    assert!(set.contains("support.audit_content"), "{set}");
    t.command(bob, "ask", json!([opt_str("question", "When are refunds issued?")]), Delivery::Gateway).await;
    let content = "SELECT COUNT(*) FROM support_answers WHERE guild_id = $1 AND question IS NOT NULL";
    let audit = "SELECT COUNT(*) FROM setting_audit WHERE guild_id = $1";
    let answers = "SELECT COUNT(*) FROM support_answers WHERE guild_id = $1";
    assert_eq!(count(&t, content).await, 1, "the question's text is kept");
    let audited = count(&t, audit).await;
    assert!(audited >= 1, "the setting change is audited");
    let now = beacon_store::now_ms();

    // A day later nothing has gone.
    assert!(t.app().enforce_retention(now + DAY_MS).await.unwrap().is_empty());
    assert_eq!(count(&t, content).await, 1);

    // Answer content goes after the default 90 days (command usage too: its own test); the
    // answer's row and the audit stay.
    let expired: Vec<_> = t
        .app()
        .enforce_retention(now + 91 * DAY_MS)
        .await
        .unwrap()
        .into_iter()
        // Command usage and the gaps report have their own retention (their own tests).
        .filter(|e| e.kind != "command usage records" && !e.kind.starts_with("gaps"))
        .collect();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!((expired[0].module, expired[0].rows), ("support", 2), "the answer's row and its audit line");
    assert_eq!(count(&t, content).await, 0, "the text is gone");
    let audit_log = std::fs::read_to_string(t._data.path().join(format!("audit/support/guild-{}.jsonl", t.guild.id)))
        .expect("the audit log");
    assert!(!audit_log.contains("refunds"), "the audit log's copy of the question is gone too: {audit_log}");
    assert!(audit_log.contains("\"answer_id\""), "the line itself stays: {audit_log}");
    assert_eq!(count(&t, answers).await, 1, "the answer's figures stay");
    assert_eq!(count(&t, audit).await, audited, "audit records stay");

    // A server that keeps answer content for 7 days: a new question's text goes after a week.
    let set =
        config(&t, sub("set", json!([opt_str("key", "support.content_retention"), opt_str("value", "7d")]))).await;
    assert!(set.contains("support.content_retention"), "{set}");
    t.command(bob, "ask", json!([opt_str("question", "Where is my invoice?")]), Delivery::Gateway).await;
    assert_eq!(count(&t, content).await, 1);
    let later = beacon_store::now_ms();
    assert!(t.app().enforce_retention(later + 6 * DAY_MS).await.unwrap().is_empty(), "not before a week");
    t.app().enforce_retention(later + 8 * DAY_MS).await.unwrap();
    assert_eq!(count(&t, content).await, 0, "gone after the server's week");

    // Audit records go after two years.
    assert!(count(&t, audit).await > audited, "the retention change was audited too");
    t.app().enforce_retention(now + 729 * DAY_MS).await.unwrap();
    assert!(count(&t, audit).await > 0, "not before two years");
    let expired = t.app().enforce_retention(later + 731 * DAY_MS).await.unwrap();
    assert!(expired.iter().any(|e| e.module == "core" && e.kind == "audit records"), "{expired:?}");
    assert_eq!(count(&t, audit).await, 0, "audit records older than two years are gone");
    t.stop().await;
}

async fn status_text(t: &TestApp, user: u64) -> String {
    text_of(&t.command(user, "status", json!([]), Delivery::Http).await)
}

/// Every command run is counted (`command_usage`: the command and how it ended, not who ran it)
/// and every handler failure recorded (`handler_errors`: the module and the reference the member
/// was shown); `/status` shows the usage to everyone and the errors to staff only; `/config`
/// shows both kinds' retention, and housekeeping with the clock moved forward expires errors
/// after 30 days and usage after 90, and nothing sooner.
#[tokio::test]
async fn command_usage_and_handler_errors_are_recorded_shown_and_expire() {
    beacon_http::install_crypto_provider();
    let t = TestApp::spawn().await;
    let bob = t.member("bob");
    let mut shown = String::new();
    for page in 1..=10 {
        shown.push_str(&config(&t, sub("show", json!([{"name": "page", "type": 4, "value": page}]))).await);
    }
    assert!(shown.contains("core.usage_retention"), "/config shows the usage retention: {shown}");
    assert!(shown.contains("core.errors_retention"), "/config shows the errors retention: {shown}");

    // A handler that fails: Discord answers 500 when the ticket's thread is made.
    set(&t, "tickets.channel", &format!("<#{}>", t.channel("support"))).await;
    t.fake.inject(beacon_testkit::Fault {
        method: Some("POST".into()),
        path_contains: format!("/channels/{}/threads", t.channel("support")),
        kind: beacon_testkit::FaultKind::Status(500),
        times: 1,
    });
    let out = text_of(&t.command(bob, "ticket", sub("open", json!([opt_str("topic", "help")])), Delivery::Http).await);
    assert!(out.contains("Something went wrong"), "{out}");
    let reference: i64 =
        sqlx::query_scalar("SELECT reference FROM handler_errors WHERE guild_id = $1 AND module = 'tickets'")
            .bind(t.guild.id as i64)
            .fetch_one(t.app().store.pool())
            .await
            .expect("the failure is recorded");
    assert!(out.contains(&reference.to_string()), "the member was shown the recorded reference: {out}");
    let failed = "SELECT COUNT(*) FROM command_usage WHERE guild_id = $1 AND command = 'ticket' AND outcome = 'failed'";
    assert_eq!(count(&t, failed).await, 1);

    let seen_by_bob = status_text(&t, bob).await;
    assert!(
        seen_by_bob.contains("Commands here (7 days)") && seen_by_bob.contains("/ticket 1 (1 failed)"),
        "{seen_by_bob}"
    );
    assert!(!seen_by_bob.contains("Latest errors"), "members do not see errors: {seen_by_bob}");
    let seen_by_owner = status_text(&t, t.owner()).await;
    assert!(seen_by_owner.contains("Latest errors here (staff)"), "{seen_by_owner}");
    assert!(seen_by_owner.contains(&format!("tickets (ref `{reference}`)")), "{seen_by_owner}");

    // A closed ticket's transcript (ticket #2: #1 had no thread).
    let out =
        text_of(&t.command(bob, "ticket", sub("open", json!([opt_str("topic", "again")])), Delivery::Gateway).await);
    assert!(!out.contains("Something went wrong"), "{out}");
    let thread: i64 = sqlx::query_scalar("SELECT channel_id FROM tickets WHERE guild_id = $1 AND number = 2")
        .bind(t.guild.id as i64)
        .fetch_one(t.app().store.pool())
        .await
        .unwrap();
    let thread = thread as u64;
    t.fake.send_message(t.guild.id, thread, bob, "Thanks, solved.").await.unwrap();
    let message = t
        .fake
        .messages(thread)
        .into_iter()
        .find(|m| m["embeds"].as_array().is_some_and(|e| !e.is_empty()))
        .and_then(|m| m["id"].as_str().and_then(|id| id.parse::<u64>().ok()))
        .expect("the ticket's message");
    let h = t.fake.click_button(t.guild.id, thread, bob, message, "tickets:close:2", Delivery::Gateway).await.unwrap();
    t.fake.wait_response(&h, WAIT).await.unwrap();
    let transcripts = t._data.path().join(format!("transcripts/guilds/{}/tickets", t.guild.id));
    let files = || std::fs::read_dir(&transcripts).map(|d| d.count()).unwrap_or(0);
    let keyed = "SELECT COUNT(*) FROM tickets WHERE guild_id = $1 AND transcript_key IS NOT NULL";
    assert_eq!(files(), 1, "the transcript is stored");
    assert_eq!(count(&t, keyed).await, 1);

    let usage = "SELECT COUNT(*) FROM command_usage WHERE guild_id = $1";
    let errors = "SELECT COUNT(*) FROM handler_errors WHERE guild_id = $1";
    let used = count(&t, usage).await;
    assert!(used >= 4, "config, ticket and two status runs: {used}");
    let now = beacon_store::now_ms();
    t.app().enforce_retention(now + 29 * DAY_MS).await.unwrap();
    assert_eq!(count(&t, errors).await, 1, "errors stay 30 days");
    let expired = t.app().enforce_retention(now + 31 * DAY_MS).await.unwrap();
    assert!(expired.iter().any(|e| e.module == "core" && e.kind == "error records"), "{expired:?}");
    assert_eq!(count(&t, errors).await, 0, "errors go after 30 days");
    assert_eq!(count(&t, usage).await, used, "usage stays 90 days");
    t.app().enforce_retention(now + 89 * DAY_MS).await.unwrap();
    assert_eq!(count(&t, usage).await, used);
    let expired = t.app().enforce_retention(now + 91 * DAY_MS).await.unwrap();
    assert!(expired.iter().any(|e| e.module == "core" && e.kind == "command usage records"), "{expired:?}");
    assert_eq!(count(&t, usage).await, 0, "usage goes after 90 days");

    // Transcripts: a year by default, on the same mechanism (one setting, shown by /config).
    assert!(shown.contains("tickets.transcript_retention"), "{shown}");
    t.app().enforce_retention(now + 364 * DAY_MS).await.unwrap();
    assert_eq!(files(), 1, "not before a year");
    let expired = t.app().enforce_retention(now + 366 * DAY_MS).await.unwrap();
    assert!(
        expired.iter().any(|e| e.module == "tickets" && e.kind == "ticket transcripts" && e.rows == 1),
        "{expired:?}"
    );
    assert_eq!(files(), 0, "the transcript file is gone");
    assert_eq!(count(&t, keyed).await, 0, "and the ticket no longer points at it");
    t.stop().await;
}
