//! The real backing services that integration tests run against: PostgreSQL, Redis and an
//! S3-compatible object store (moto's server mode, from PyPI).
//!
//! A service is configured by an environment variable (`scripts/services.sh` prints them). When
//! it is not configured the test is skipped with a line on stderr — unless
//! `BEACON_TEST_REQUIRE_SERVICES=1` (CI sets it), in which case the test fails, so a missing
//! service can never pass silently.
//!
//! ```no_run
//! # async fn demo() {
//! use beacon_testkit::services::{ScratchDatabase, redis_url};
//!
//! let Some(db) = ScratchDatabase::create().await else { return }; // skipped: not configured
//! println!("a fresh PostgreSQL database: {}", db.url);
//! let _redis = redis_url();
//! db.drop_database().await;
//! # }
//! ```

use std::process::Stdio;
use std::time::Duration;

use sqlx::{AssertSqlSafe, Connection};

/// Admin URL of a PostgreSQL server whose role may create databases.
pub const POSTGRES_URL_ENV: &str = "BEACON_TEST_POSTGRES_URL";
/// URL of a Redis server tests may write random keys to.
pub const REDIS_URL_ENV: &str = "BEACON_TEST_REDIS_URL";
/// `1`: a missing service fails the test instead of skipping it.
pub const REQUIRE_SERVICES_ENV: &str = "BEACON_TEST_REQUIRE_SERVICES";

/// Whether missing services must fail tests.
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES_ENV).as_deref() == Ok("1")
}

/// The URL in `var`, or `None` (skip). Panics when services are required and it is not set.
pub fn service_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(!services_required(), "{REQUIRE_SERVICES_ENV}=1 but {var} is not set");
            eprintln!("skipping: {var} not set");
            None
        }
    }
}

/// The PostgreSQL admin URL, or `None` (skip).
pub fn postgres_url() -> Option<String> {
    service_url(POSTGRES_URL_ENV)
}

/// The Redis URL, or `None` (skip).
pub fn redis_url() -> Option<String> {
    service_url(REDIS_URL_ENV)
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

/// A brand-new, empty PostgreSQL database for one test, so tests never share state and can run
/// in parallel. Drop it with [`ScratchDatabase::drop_database`]; a failed test leaves its
/// `beacon_t_*` database behind for inspection.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// Connection URL of the new database.
    pub url: String,
    /// Its name.
    pub name: String,
    admin_url: String,
}

impl ScratchDatabase {
    /// Creates the database, or returns `None` when PostgreSQL is not configured (and not
    /// required). Panics when it is configured but unreachable.
    pub async fn create() -> Option<ScratchDatabase> {
        let admin_url = postgres_url()?;
        let name = format!("beacon_t_{}_{:012x}", std::process::id(), fastrand::u64(..) & 0xffff_ffff_ffff);
        let mut admin = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_ENV} is set but PostgreSQL is unreachable: {e}"));
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("create test database (the role needs CREATEDB): {e}"));
        let _ = admin.close().await;
        Some(ScratchDatabase { url: with_database(&admin_url, &name), name, admin_url })
    }

    /// Drops the database, forcing out connections that are still open. Cleanup is not the
    /// test's subject: it retries briefly (a backend may be mid-exit), then warns.
    pub async fn drop_database(self) {
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        for _ in 0..5 {
            if let Ok(mut admin) = sqlx::PgConnection::connect(&self.admin_url).await {
                let dropped = sqlx::query(AssertSqlSafe(drop.clone())).execute(&mut admin).await.is_ok();
                let _ = admin.close().await;
                if dropped {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        eprintln!("warning: could not drop test database {}", self.name);
    }
}

/// moto's S3 server on a free loopback port, killed when dropped.
pub struct MotoServer {
    _child: tokio::process::Child,
    endpoint: String,
}

impl MotoServer {
    /// Starts `moto_server` and waits until it accepts connections; `None` (skip) when it is
    /// not installed and services are not required.
    pub async fn start() -> Option<MotoServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap_or_else(|e| panic!("no free port: {e}"))
            .port();
        let child = tokio::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                assert!(!services_required(), "{REQUIRE_SERVICES_ENV}=1 but moto_server cannot start: {e}");
                eprintln!("skipping: moto_server not available ({e})");
                return None;
            }
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "moto_server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(MotoServer { _child: child, endpoint: format!("http://127.0.0.1:{port}") })
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(with_database("postgres://u:p@h:5432/beacon", "t1"), "postgres://u:p@h:5432/t1");
        assert_eq!(with_database("postgres://h/beacon?sslmode=disable", "t2"), "postgres://h/t2?sslmode=disable");
        assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
    }
}
