//! The [`Store`] handle: connection, migrations and cross-guild housekeeping.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, AssertSqlSafe, Row, Transaction};

use crate::changes::{self, Generations};
use crate::claims::{Pending, write_claims};
use crate::error::{StoreError, redact_url};
use crate::guild::GuildStore;
use crate::now_ms;

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a connection waits on a locked SQLite database before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u64 = 5_000;

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Embedded SQLite file (or in-memory database), WAL mode.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

impl Backend {
    /// Lower-case name, as used in logs and health output.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Pool tuning for [`Store::connect_with`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Maximum pooled connections; `None` picks a backend default (8 for SQLite files, 10 for
    /// PostgreSQL). In-memory SQLite always uses exactly one connection.
    pub max_connections: Option<u32>,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { max_connections: None, acquire_timeout: Duration::from_secs(10) }
    }
}

/// A migration shipped by a module, applied with [`Store::apply_module_migrations`].
///
/// Each `(module, version)` is applied once, in a transaction, in version order; the SQL for the
/// running backend is checksummed and a later change to an applied migration is an error. Write
/// the SQL with the same column types on both backends (`BIGINT` ids and timestamps, `TEXT`,
/// `BIGINT` 0/1 for booleans) so one query path works with `$1, $2, …` placeholders.
#[derive(Debug, Clone, Copy)]
pub struct ModuleMigration {
    /// Module name, e.g. `"tickets"`.
    pub module: &'static str,
    /// Version within the module, applied in ascending order.
    pub version: i64,
    /// Short human description.
    pub description: &'static str,
    /// SQL for SQLite (may contain several statements).
    pub sqlite: &'static str,
    /// SQL for PostgreSQL (may contain several statements).
    pub postgres: &'static str,
}

/// Handle to the database. Cheap to clone (shares one pool).
///
/// Guild data is reached only through [`Store::guild`], which binds the guild id into every
/// query; methods on `Store` itself deal with data that is not owned by one guild.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    shared: Arc<Shared>,
}

/// What all clones of a store share; its background tasks stop when the last clone is dropped.
struct Shared {
    /// The SQLite WAL checkpointer.
    _checkpointer: Option<AbortOnDrop>,
    /// The claim writer's queue (`None` outside a runtime: claims are then written one by one).
    claims: Option<mpsc::UnboundedSender<Pending>>,
    _claim_writer: Option<AbortOnDrop>,
    generations: Arc<Generations>,
    /// Reads other processes' change notices; started by [`Store::migrate`].
    change_follower: OnceLock<Option<AbortOnDrop>>,
}

impl Shared {
    fn new(pool: &AnyPool, checkpointer: Option<AbortOnDrop>) -> Arc<Shared> {
        let (claims, claim_writer) = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let task = runtime.spawn(write_claims(pool.clone(), rx));
                (Some(tx), Some(AbortOnDrop(task.abort_handle())))
            }
            Err(_) => (None, None),
        };
        Arc::new(Shared {
            _checkpointer: checkpointer,
            claims,
            _claim_writer: claim_writer,
            generations: Arc::new(Generations::new()),
            change_follower: OnceLock::new(),
        })
    }
}

/// How often the background task moves the SQLite WAL into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checkpoints the WAL off the request path. SQLite's automatic checkpoint runs inside whichever
/// commit crosses the threshold and fsyncs the database file there, so one unlucky request pays
/// for everyone's writes; a PASSIVE checkpoint on its own connection never blocks readers or
/// writers.
fn spawn_checkpointer(pool: &AnyPool) -> Option<AbortOnDrop> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let pool = pool.clone();
    let task = runtime.spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
                if pool.is_closed() {
                    break;
                }
                tracing::debug!(error = %e, "sqlite wal checkpoint failed; retrying");
            }
        }
    });
    Some(AbortOnDrop(task.abort_handle()))
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

/// Where an `sqlite:` URL points.
enum SqliteTarget {
    Memory(String),
    File(String),
}

/// Parses `sqlite://path`, `sqlite:path` or `sqlite::memory:`; creates the parent directory of a
/// file database and makes sure the file is created if missing (`mode=rwc`).
fn prepare_sqlite(url: &str) -> Result<SqliteTarget, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::InvalidUrl(redact_url(url)))?;
    let (db, params) = match rest.split_once('?') {
        Some((db, params)) => (db, Some(params)),
        None => (rest, None),
    };
    let memory = db == ":memory:" || params.is_some_and(|p| p.split('&').any(|kv| kv == "mode=memory"));
    if memory {
        return Ok(SqliteTarget::Memory(url.to_owned()));
    }
    if db.is_empty() {
        return Err(StoreError::InvalidUrl(format!("{} (no database file)", redact_url(url))));
    }
    if let Some(parent) = Path::new(db).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    // `sqlite:<path>` (no `//`) keeps the path out of URL host parsing; escape the characters a
    // URL would otherwise interpret.
    let encoded = db.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
    let params = match params {
        Some(p) if p.split('&').any(|kv| kv.starts_with("mode=")) => p.to_owned(),
        Some(p) if !p.is_empty() => format!("{p}&mode=rwc"),
        _ => "mode=rwc".to_owned(),
    };
    Ok(SqliteTarget::File(format!("sqlite:{encoded}?{params}")))
}

/// FNV-1a 64-bit, hex: detects edits to an applied module migration (not a security hash).
fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sql.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Accepts plain lower-case SQL identifiers only, since table names are spliced into SQL.
fn valid_table_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 63
}

impl Store {
    /// Connects with default [`StoreOptions`]. Accepts `sqlite://data/beacon.db`,
    /// `sqlite:///abs/path.db`, `sqlite::memory:` (one shared connection) and
    /// `postgres://user:pass@host/db` (or `postgresql://`).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        Store::connect_with(url, StoreOptions::default()).await
    }

    /// Connects with explicit pool options. Does not run migrations (see [`Store::migrate`]).
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(options.max_connections.unwrap_or(10))
                .acquire_timeout(options.acquire_timeout)
                .connect(url)
                .await?;
            let shared = Shared::new(&pool, None);
            return Ok(Store { pool, backend: Backend::Postgres, shared });
        }
        if !url.starts_with("sqlite:") {
            return Err(StoreError::InvalidUrl(format!("{} (expected sqlite: or postgres://)", redact_url(url))));
        }
        let base = AnyPoolOptions::new().acquire_timeout(options.acquire_timeout).after_connect(|conn, _meta| {
            Box::pin(async move {
                // Checkpoints are the background task's job (see `spawn_checkpointer`); the WAL
                // file is truncated back to 64 MiB after one that grew larger.
                let pragmas = format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                         PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; \
                         PRAGMA journal_size_limit = 67108864;"
                );
                sqlx::raw_sql(AssertSqlSafe(pragmas)).execute(conn).await?;
                Ok(())
            })
        });
        let (pool, checkpointer) = match prepare_sqlite(url)? {
            // An in-memory database lives as long as its connection: keep exactly one, forever.
            SqliteTarget::Memory(url) => {
                let pool = base
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect(&url)
                    .await?;
                (pool, None)
            }
            SqliteTarget::File(url) => {
                let pool = base.max_connections(options.max_connections.unwrap_or(8)).connect(&url).await?;
                // WAL is persistent in the file; switching needs an exclusive lock, so do it once
                // here rather than on every new connection.
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode = WAL").fetch_one(&pool).await?;
                if !mode.eq_ignore_ascii_case("wal") {
                    tracing::warn!(journal_mode = %mode, "sqlite did not switch to WAL mode");
                }
                let checkpointer = spawn_checkpointer(&pool);
                (pool, checkpointer)
            }
        };
        let shared = Shared::new(&pool, checkpointer);
        Ok(Store { pool, backend: Backend::Sqlite, shared })
    }

    /// Applies the embedded core migrations for this backend (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        migrator.run(&self.pool).await.map_err(|e| StoreError::Migration(e.to_string()))?;
        self.shared.change_follower.get_or_init(|| {
            let runtime = tokio::runtime::Handle::try_current().ok()?;
            let task = runtime.spawn(changes::follow(self.pool.clone(), Arc::downgrade(&self.shared.generations)));
            Some(AbortOnDrop(task.abort_handle()))
        });
        Ok(())
    }

    /// The cache generation of `guild_id` in this process (see [`crate::Generation`]).
    pub fn generation(&self, guild_id: u64) -> crate::Generation {
        self.shared.generations.get(guild_id)
    }

    pub(crate) fn bump_generation(&self, guild_id: u64) {
        self.shared.generations.bump(guild_id);
    }

    pub(crate) fn origin(&self) -> i64 {
        self.shared.generations.origin
    }

    /// Records that `guild_id`'s cached data changed, after a write committed (see
    /// [`GuildStore::mark_changed`]). A failure is logged: the write itself stands, and other
    /// processes' caches catch up when their entries expire.
    pub(crate) async fn notify_changed(&self, guild_id: u64) {
        self.bump_generation(guild_id);
        if let Err(e) = changes::insert_notice(&self.pool, guild_id, self.origin()).await {
            tracing::warn!(error = %e, guild_id, "could not record a change notice for other processes");
        }
    }

    /// Applies module migrations not applied yet, each once and in its own transaction, ordered
    /// by `(module, version)`. An applied version whose SQL changed is an error.
    pub async fn apply_module_migrations(&self, migrations: &[ModuleMigration]) -> Result<(), StoreError> {
        let mut sorted: Vec<&ModuleMigration> = migrations.iter().collect();
        sorted.sort_by(|a, b| (a.module, a.version).cmp(&(b.module, b.version)));
        for pair in sorted.windows(2) {
            if let [a, b] = pair
                && a.module == b.module
                && a.version == b.version
            {
                return Err(StoreError::Migration(format!("module {} declares version {} twice", a.module, a.version)));
            }
        }
        for m in sorted {
            self.apply_module_migration(m).await?;
        }
        Ok(())
    }

    async fn applied_checksum(&self, m: &ModuleMigration) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT checksum FROM beacon_module_migrations WHERE module = $1 AND version = $2")
            .bind(m.module)
            .bind(m.version)
            .fetch_optional(&self.pool)
            .await?)
    }

    fn check_applied(m: &ModuleMigration, applied: &str, expected: &str) -> Result<(), StoreError> {
        if applied == expected {
            Ok(())
        } else {
            Err(StoreError::Migration(format!(
                "module {} migration {} was applied but its SQL has changed (checksum {applied} != {expected})",
                m.module, m.version
            )))
        }
    }

    async fn apply_module_migration(&self, m: &ModuleMigration) -> Result<(), StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let sum = checksum(sql);
        if let Some(applied) = self.applied_checksum(m).await? {
            return Self::check_applied(m, &applied, &sum);
        }
        let mut tx = self.begin_write().await?;
        // Claim the version first: a concurrent applier blocks here (or inserts nothing) instead
        // of running the SQL twice.
        let claimed = sqlx::query(
            "INSERT INTO beacon_module_migrations (module, version, description, checksum, applied_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (module, version) DO NOTHING",
        )
        .bind(m.module)
        .bind(m.version)
        .bind(m.description)
        .bind(&sum)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return match self.applied_checksum(m).await? {
                Some(applied) => Self::check_applied(m, &applied, &sum),
                None => Err(StoreError::Migration(format!(
                    "module {} migration {} could not be recorded",
                    m.module, m.version
                ))),
            };
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|e| {
            StoreError::Migration(format!("module {} migration {} ({}): {e}", m.module, m.version, m.description))
        })?;
        tx.commit().await?;
        tracing::info!(module = m.module, version = m.version, "applied module migration");
        Ok(())
    }

    /// Records `table` as holding guild-owned rows (it must have a `guild_id BIGINT` column), so
    /// [`Store::purge_left_guilds`] deletes from it. Idempotent; call after the module's
    /// migrations created the table.
    pub async fn register_guild_table(&self, table: &str) -> Result<(), StoreError> {
        if !valid_table_name(table) {
            return Err(StoreError::Invalid(format!("table name {table:?} must be a lower-case SQL identifier")));
        }
        // Fails early if the table or its guild_id column does not exist.
        sqlx::query(AssertSqlSafe(format!("SELECT guild_id FROM {table} WHERE 1 = 0")))
            .fetch_optional(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO beacon_guild_tables (table_name, registered_at) VALUES ($1, $2) \
             ON CONFLICT (table_name) DO NOTHING",
        )
        .bind(table)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Names of all tables holding guild-owned rows, in purge order (latest registered first).
    pub async fn guild_tables(&self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT table_name FROM beacon_guild_tables ORDER BY registered_at DESC, table_name")
            .fetch_all(&self.pool)
            .await?)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let one: i64 = sqlx::query_scalar("SELECT CAST(1 AS BIGINT)").fetch_one(&self.pool).await?;
        if one == 1 { Ok(()) } else { Err(StoreError::Corrupt(format!("ping returned {one}"))) }
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw pool, for module repositories. Guild-owned queries must bind the guild id from a
    /// [`GuildStore`] (`guild.id()`), never from user input, and their tables must be registered
    /// with [`Store::register_guild_table`]. Use `$1, $2, …` placeholders (both backends accept them).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Scope for one guild's data; every query it runs binds `guild_id`.
    pub fn guild(&self, guild_id: u64) -> GuildStore {
        GuildStore::new(self.clone(), guild_id)
    }

    /// Number of guilds the bot is currently in (not marked left).
    pub async fn guild_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM guilds WHERE left_at IS NULL").fetch_one(&self.pool).await?)
    }

    /// Ids of guilds the bot is currently in, ascending.
    pub async fn active_guild_ids(&self) -> Result<Vec<u64>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT guild_id FROM guilds WHERE left_at IS NULL ORDER BY guild_id")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(|id| id as u64).collect())
    }

    /// Idempotency claim: returns `true` only the first time `(kind, id)` is claimed, across all
    /// processes sharing this database (e.g. an interaction or gateway event id).
    pub async fn claim_once(&self, kind: &str, id: u64) -> Result<bool, StoreError> {
        if let Some(queue) = &self.shared.claims {
            let (done, outcome) = oneshot::channel();
            if queue.send(Pending { kind: kind.to_owned(), id, done }).is_ok() {
                return match outcome.await {
                    Ok(Ok(claimed)) => Ok(claimed),
                    Ok(Err(e)) => Err(StoreError::Claim(e)),
                    Err(_) => Err(StoreError::Claim("the claim writer stopped".into())),
                };
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO processed_claims (kind, id, claimed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (kind, id) DO NOTHING",
        )
        .bind(kind)
        .bind(id as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    /// Deletes claims made before the unix-ms timestamp `older_than_ms`; returns how many.
    pub async fn prune_claims(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM processed_claims WHERE claimed_at < $1")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Retention: deletes every row (core and registered module tables) of guilds marked left
    /// before the unix-ms timestamp `left_before_ms`, then the guild record. A guild that rejoined
    /// meanwhile is skipped. Returns the purged guild ids.
    pub async fn purge_left_guilds(&self, left_before_ms: i64) -> Result<Vec<u64>, StoreError> {
        let candidates: Vec<i64> = sqlx::query_scalar(
            "SELECT guild_id FROM guilds WHERE left_at IS NOT NULL AND left_at < $1 ORDER BY guild_id",
        )
        .bind(left_before_ms)
        .fetch_all(&self.pool)
        .await?;
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let tables = self.guild_tables().await?;
        if let Some(bad) = tables.iter().find(|t| !valid_table_name(t)) {
            return Err(StoreError::Corrupt(format!("beacon_guild_tables contains invalid table name {bad:?}")));
        }
        let mut purged = Vec::with_capacity(candidates.len());
        for guild_id in candidates {
            let mut tx = self.begin_write().await?;
            // Re-check (and lock the row) inside the transaction so a concurrent rejoin wins.
            let still_left = sqlx::query(
                "UPDATE guilds SET updated_at = updated_at \
                 WHERE guild_id = $1 AND left_at IS NOT NULL AND left_at < $2",
            )
            .bind(guild_id)
            .bind(left_before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if still_left == 0 {
                tx.rollback().await?;
                continue;
            }
            for table in &tables {
                sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE guild_id = $1")))
                    .bind(guild_id)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("DELETE FROM guilds WHERE guild_id = $1").bind(guild_id).execute(&mut *tx).await?;
            tx.commit().await?;
            tracing::info!(guild_id, "purged data of guild past retention");
            self.notify_changed(guild_id as u64).await;
            purged.push(guild_id as u64);
        }
        Ok(purged)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a transaction that will write. On SQLite this takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so read-then-write transactions wait on `busy_timeout` instead of
    /// failing with a busy snapshot.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// Decodes an optional JSON text column.
pub(crate) fn json_column(row: &AnyRow, column: &str) -> Result<Option<serde_json::Value>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| {
        serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("column {column} holds invalid JSON: {e}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/dir/beacon.db");
        let url = format!("sqlite://{}", path.display());
        match prepare_sqlite(&url).expect("prepare") {
            SqliteTarget::File(u) => assert_eq!(u, format!("sqlite:{}?mode=rwc", path.display())),
            SqliteTarget::Memory(_) => panic!("file url treated as memory"),
        }
        assert!(path.parent().expect("parent").is_dir());
        assert!(matches!(prepare_sqlite("sqlite::memory:"), Ok(SqliteTarget::Memory(_))));
        assert!(matches!(prepare_sqlite("sqlite://?mode=memory"), Ok(SqliteTarget::Memory(_))));
        assert!(matches!(prepare_sqlite("sqlite://"), Err(StoreError::InvalidUrl(_))));
        let ro = format!("sqlite:{}?mode=ro", path.display());
        match prepare_sqlite(&ro).expect("prepare") {
            SqliteTarget::File(u) => assert!(u.ends_with("?mode=ro")),
            SqliteTarget::Memory(_) => panic!("file url treated as memory"),
        }
    }

    #[test]
    fn table_names() {
        assert!(valid_table_name("tickets"));
        assert!(valid_table_name("_kb_chunks2"));
        assert!(!valid_table_name("Tickets"));
        assert!(!valid_table_name("t; DROP TABLE guilds"));
        assert!(!valid_table_name(""));
        assert!(!valid_table_name("1abc"));
        assert!(!valid_table_name(&"a".repeat(64)));
    }

    #[test]
    fn checksum_changes_with_sql() {
        assert_eq!(checksum("CREATE TABLE a (x BIGINT)"), checksum("CREATE TABLE a (x BIGINT)"));
        assert_ne!(checksum("CREATE TABLE a (x BIGINT)"), checksum("CREATE TABLE a (y BIGINT)"));
        assert_eq!(checksum("").len(), 16);
    }
}
