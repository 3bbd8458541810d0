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

    // Answer content goes after the default 90 days; the answer's row and the audit stay.
    let expired = t.app().enforce_retention(now + 91 * DAY_MS).await.unwrap();
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!((expired[0].module, expired[0].rows), ("support", 1));
    assert_eq!(count(&t, content).await, 0, "the text is gone");
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
