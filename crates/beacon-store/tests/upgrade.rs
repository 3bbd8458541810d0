//! A database made by the previous release (0.1.0, which kept core migrations in sqlx's
//! `_sqlx_migrations` and module migrations in `beacon_module_migrations`) upgrades in place:
//! on SQLite and PostgreSQL, its data stays, its applied versions are adopted, and the old
//! bookkeeping tables are gone. The fixtures are dumps of databases that release created.
//! (The binary's e2e suite opens the same dumps with every module of today.)

use beacon_store::{Backend, Store};
use beacon_testkit::services::ScratchDatabase;

const SQLITE_DUMP: &str = include_str!("fixtures/release-0.1.0-sqlite.sql");
const POSTGRES_DUMP: &str = include_str!("fixtures/release-0.1.0-postgres.sql");

async fn scalar(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(store.pool()).await.expect(sql)
}

async fn check_upgraded(store: &Store) {
    store.migrate().await.expect("an old database upgrades");
    store.migrate().await.expect("and stays upgraded");
    let guild = store.guild(42).get().await.expect("read").expect("the guild is still there");
    assert_eq!(guild.name, "Fixture guild");
    assert!(store.guild(42).is_authorized(7).await.expect("grant"), "its grants are kept");
    assert_eq!(scalar(store, "SELECT COUNT(*) FROM kb_documents WHERE guild_id = 42").await, 2, "module rows are kept");
    // Core versions are checked again (the release's two, and those since, applied);
    // module versions wait for their module to declare them.
    assert_eq!(
        scalar(
            store,
            "SELECT COUNT(*) FROM beacon_schema_migrations WHERE schema_name = 'core' AND checksum <> 'adopted'"
        )
        .await,
        beacon_store::CORE.migrations.len() as i64
    );
    assert!(scalar(store, "SELECT COUNT(*) FROM beacon_schema_migrations WHERE schema_name = 'kb'").await >= 2);
    let gone = match store.backend() {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE name IN \
             ('_sqlx_migrations', 'beacon_module_migrations', 'beacon_guild_tables')"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN \
             ('_sqlx_migrations', 'beacon_module_migrations', 'beacon_guild_tables')"
        }
    };
    assert_eq!(scalar(store, gone).await, 0, "the old bookkeeping tables are dropped");
    // New writes work against the adopted schema (identity columns keep counting).
    store.guild(42).set_setting("support.user_rate", Some(&serde_json::json!(9)), 7).await.expect("write");
    assert_eq!(scalar(store, "SELECT COUNT(*) FROM setting_audit WHERE guild_id = 42").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_database_of_the_previous_release_upgrades() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/beacon.db", dir.path().display());
    let store = Store::connect(&url).await.expect("connect");
    sqlx::raw_sql(SQLITE_DUMP).execute(store.pool()).await.expect("load the dump");
    check_upgraded(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_database_of_the_previous_release_upgrades() {
    let Some(db) = ScratchDatabase::create().await else { return };
    let store = Store::connect(&db.url).await.expect("connect");
    sqlx::raw_sql(POSTGRES_DUMP).execute(store.pool()).await.expect("load the dump");
    check_upgraded(&store).await;
    store.close().await;
    db.drop_database().await;
}
