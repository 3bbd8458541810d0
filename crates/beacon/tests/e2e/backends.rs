//! The same app on the scale-out backends: PostgreSQL and Redis, for real. These run when
//! `BEACON_TEST_POSTGRES_URL` and `BEACON_TEST_REDIS_URL` are set (scripts/services.sh prints
//! them) and fail when `BEACON_TEST_REQUIRE_SERVICES=1` and they are not.

use beacon_testkit::Delivery;
use beacon_testkit::services::{self, ScratchDatabase};
use serde_json::json;

use crate::harness::*;

#[tokio::test]
async fn runs_on_postgres_and_redis() {
    let Some(redis) = services::redis_url() else { return };
    let Some(db) = ScratchDatabase::create().await else { return };
    let t = TestApp::spawn_with(Options {
        env: vec![("BEACON_DATABASE_URL".into(), db.url.clone()), ("BEACON_REDIS_URL".into(), redis)],
        ..Options::default()
    })
    .await;
    let out = t.command(t.member("bob"), "status", json!([]), Delivery::Gateway).await;
    let text = text_of(&out);
    assert!(text.contains("postgres"), "{text}");
    assert!(text.contains("redis"), "{text}");
    let staff = t.role("staff").to_string();
    t.command(
        t.owner(),
        "config",
        sub("set", json!([opt_str("key", "core.staff_roles"), opt_str("value", &staff)])),
        Delivery::Http,
    )
    .await;
    assert_eq!(t.app().store.backend(), beacon_store::Backend::Postgres);
    let stored = t.app().store.guild(t.guild.id).setting("core.staff_roles").await.unwrap();
    assert_eq!(stored, Some(json!([staff])));
    let ready: serde_json::Value =
        reqwest::get(format!("http://{}/health/ready", t.addr())).await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");
    t.stop().await;
    db.drop_database().await;
}
