//! Store fixtures (copied from beacon-store's tests): a fresh SQLite file per test, or a fresh
//! PostgreSQL database per test (created through `BEACON_TEST_POSTGRES_URL`, dropped afterwards),
//! so tests never share state and can run in parallel.

#![allow(dead_code)] // each test binary uses a subset of the helpers

use beacon_store::{Store, StoreOptions};
use sqlx::AssertSqlSafe;

/// A migrated store plus whatever keeps its database alive.
pub struct Fixture {
    pub store: Store,
    /// The URL another process can connect with.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<PgDatabase>,
}

struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Fixture {
    /// Closes the store and drops a PostgreSQL test database. (A failed test leaves its
    /// `beacon_t_*` database behind for inspection.)
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(pg) = self.pg {
            let admin = Store::connect_with(&pg.admin_url, small_pool()).await.expect("connect admin");
            // Cleanup, not the test's subject: retry briefly (a backend may be mid-exit), then warn.
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", pg.name);
            let mut dropped = false;
            for _ in 0..5 {
                if sqlx::query(AssertSqlSafe(drop.clone())).execute(admin.pool()).await.is_ok() {
                    dropped = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            if !dropped {
                eprintln!("warning: could not drop test database {}", pg.name);
            }
            admin.close().await;
        }
    }
}

fn small_pool() -> StoreOptions {
    StoreOptions { max_connections: Some(4), ..StoreOptions::default() }
}

/// A migrated SQLite store in a fresh temporary directory (in a nested, not yet existing dir, to
/// exercise directory creation).
pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/data/beacon.db", dir.path().display());
    let store = Store::connect(&url).await.expect("connect sqlite");
    store.migrate().await.expect("migrate sqlite");
    Fixture { store, url, _dir: Some(dir), pg: None }
}

/// The admin URL, or `None` (skip) — panics when services are required but not configured.
pub fn postgres_url() -> Option<String> {
    match std::env::var("BEACON_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("BEACON_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "BEACON_TEST_REQUIRE_SERVICES=1 but BEACON_TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipping: BEACON_TEST_POSTGRES_URL not set");
            None
        }
    }
}

/// Replaces the database name of a `postgres://…/db?params` URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    }
}

/// A migrated store on a brand-new PostgreSQL database, or `None` when PostgreSQL is not
/// configured (and not required).
pub async fn postgres() -> Option<Fixture> {
    let admin_url = postgres_url()?;
    let name = format!("beacon_t_{}_{:012x}", std::process::id(), fastrand::u64(..) & 0xffff_ffff_ffff);
    let admin = Store::connect_with(&admin_url, small_pool())
        .await
        .expect("BEACON_TEST_POSTGRES_URL is set but PostgreSQL is unreachable");
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(admin.pool())
        .await
        .expect("create test database (role needs CREATEDB)");
    admin.close().await;
    let url = with_database(&admin_url, &name);
    let store = Store::connect_with(&url, small_pool()).await.expect("connect test database");
    store.migrate().await.expect("migrate postgres");
    Some(Fixture { store, url, _dir: None, pg: Some(PgDatabase { admin_url, name }) })
}
