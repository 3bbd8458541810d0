//! The same app on the scale-out backends: PostgreSQL and Redis, for real. These run when
//! `BEACON_TEST_POSTGRES_URL` and `BEACON_TEST_REDIS_URL` are set (scripts/services.sh prints
//! them) and fail when `BEACON_TEST_REQUIRE_SERVICES=1` and they are not.

use beacon_store::Store;
use beacon_testkit::Delivery;
use serde_json::json;

use crate::support::*;

fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("BEACON_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "BEACON_TEST_REQUIRE_SERVICES=1 but {var} is not set"
            );
            eprintln!("skipping: {var} not set");
            None
        }
    }
}

/// `postgres://u:p@h:5432/db?x` with another database name.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let root = base.rsplit_once('/').map_or(base, |(r, _)| r);
    match query {
        Some(q) => format!("{root}/{name}?{q}"),
        None => format!("{root}/{name}"),
    }
}

#[tokio::test]
async fn runs_on_postgres_and_redis() {
    let (Some(pg), Some(redis)) = (service("BEACON_TEST_POSTGRES_URL"), service("BEACON_TEST_REDIS_URL")) else {
        return;
    };
    let name = format!("beacon_e2e_{}", std::process::id() as u64 * 1000 + fastrand_u16() as u64);
    let admin = Store::connect(&pg).await.expect("admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(admin.pool()).await.expect("create db");
    let t = TestApp::spawn_with(Options {
        env: vec![("BEACON_DATABASE_URL".into(), with_database(&pg, &name)), ("BEACON_REDIS_URL".into(), redis)],
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
    // Cleanup, not the test's subject.
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
        .execute(admin.pool())
        .await
    {
        eprintln!("warning: could not drop {name}: {e}");
    }
}

fn fastrand_u16() -> u16 {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0) % 1000)
        as u16
}
