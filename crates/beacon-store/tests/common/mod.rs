//! Store fixtures shared by the integration tests: a fresh SQLite file per test, or a fresh
//! PostgreSQL database per test (created through `BEACON_TEST_POSTGRES_URL`, dropped afterwards),
//! so tests never share state and can run in parallel.

#![allow(dead_code)] // each test binary uses a subset of the helpers

use beacon_store::{Store, StoreOptions};
use beacon_testkit::services::ScratchDatabase;

/// A migrated store plus whatever keeps its database alive.
pub struct Fixture {
    pub store: Store,
    /// The URL another process can connect with.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<ScratchDatabase>,
}

impl Fixture {
    /// Closes the store and drops a PostgreSQL test database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some(pg) = self.pg {
            pg.drop_database().await;
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

/// A migrated store on a brand-new PostgreSQL database, or `None` when PostgreSQL is not
/// configured (and not required).
pub async fn postgres() -> Option<Fixture> {
    let db = ScratchDatabase::create().await?;
    let store = Store::connect_with(&db.url, small_pool()).await.expect("connect test database");
    store.migrate().await.expect("migrate postgres");
    Some(Fixture { store, url: db.url.clone(), _dir: None, pg: Some(db) })
}
