//! The [`Store`] handle: connection, migrations and cross-guild housekeeping.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, AssertSqlSafe, Row, Transaction};

use crate::changes::{self, Generations};
use crate::claims::{Pending, write_claims};
use crate::error::{StoreError, redact_url};
use crate::guild::{GuildStore, GuildUpsert};
use crate::now_ms;
use crate::registrar::{self, Registration, write_registrations};
use crate::schema::{Migration, Schema, checksum, valid_table_name};

/// The core schema: guilds, delegated access, settings and their audit, module switches,
/// idempotency claims and change notices.
pub const CORE: Schema = Schema {
    name: "core",
    migrations: &[
        crate::migration!(1, "core", "0001_core.sql"),
        crate::migration!(2, "guild changes", "0002_guild_changes.sql"),
        crate::migration!(3, "setting change origin", "0003_setting_origin.sql"),
        crate::migration!(4, "command usage and handler errors", "0004_activity.sql"),
    ],
    // `guilds` last: the record goes when everything it owns is gone.
    guild_tables: &[
        "guild_changes",
        "authorized_users",
        "guild_settings",
        "setting_audit",
        "guild_modules",
        "command_usage",
        "handler_errors",
        "guilds",
    ],
};

/// Marks a version applied by a release that kept its migrations elsewhere (its checksum is
/// recorded when the version is next seen).
const ADOPTED: &str = "adopted";

/// The PostgreSQL advisory lock key under which schemas are migrated ("beacon" in ASCII).
const SCHEMA_LOCK: i64 = 0x6265_6163_6f6e;

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
    /// Writes guild registrations (used directly outside a runtime).
    registrar: registrar::Writer,
    /// The registration writer's queue (`None` outside a runtime: registrations are then
    /// written one by one).
    registrations: Option<mpsc::UnboundedSender<registrar::Pending>>,
    _registration_writer: Option<AbortOnDrop>,
    generations: Arc<Generations>,
    /// Reads other processes' change notices; started by [`Store::migrate`].
    change_follower: OnceLock<Option<AbortOnDrop>>,
    /// The schemas migrated by this process, in order (the core first).
    schemas: std::sync::Mutex<Vec<Schema>>,
}

impl Shared {
    fn new(pool: &AnyPool, backend: Backend, checkpointer: Option<AbortOnDrop>) -> Arc<Shared> {
        let generations = Arc::new(Generations::new());
        let registrar = registrar::Writer { pool: pool.clone(), backend, generations: generations.clone() };
        let (claims, claim_writer, registrations, registration_writer) = match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let task = runtime.spawn(write_claims(pool.clone(), rx));
                let (reg_tx, reg_rx) = mpsc::unbounded_channel();
                let reg_task = runtime.spawn(write_registrations(registrar.clone(), reg_rx));
                (
                    Some(tx),
                    Some(AbortOnDrop(task.abort_handle())),
                    Some(reg_tx),
                    Some(AbortOnDrop(reg_task.abort_handle())),
                )
            }
            Err(_) => (None, None, None, None),
        };
        Arc::new(Shared {
            _checkpointer: checkpointer,
            claims,
            _claim_writer: claim_writer,
            registrar,
            registrations,
            _registration_writer: registration_writer,
            generations,
            change_follower: OnceLock::new(),
            schemas: std::sync::Mutex::new(Vec::new()),
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
            let shared = Shared::new(&pool, Backend::Postgres, None);
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
        let shared = Shared::new(&pool, Backend::Sqlite, checkpointer);
        Ok(Store { pool, backend: Backend::Sqlite, shared })
    }

    /// Applies the core schema (idempotent) and starts following other processes' change
    /// notices. A database created before schemas existed (sqlx's `_sqlx_migrations` for the
    /// core, `beacon_module_migrations` for modules) is adopted in place: its applied versions
    /// are recorded in `beacon_schema_migrations` and the old bookkeeping tables are dropped.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.bootstrap().await?;
        self.migrate_schema(&CORE).await?;
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

    /// The bookkeeping table, and the adoption of a database made by the releases that kept
    /// their migrations elsewhere. One transaction; concurrent starts wait for each other.
    async fn bootstrap(&self) -> Result<(), StoreError> {
        let mut tx = self.begin_schema_tx().await?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS beacon_schema_migrations (
                schema_name TEXT   NOT NULL,
                version     BIGINT NOT NULL,
                description TEXT   NOT NULL,
                checksum    TEXT   NOT NULL,
                applied_at  BIGINT NOT NULL,
                PRIMARY KEY (schema_name, version)
            )",
        )
        .execute(&mut *tx)
        .await?;
        let mut adopted = 0u64;
        if self.table_exists(&mut tx, "_sqlx_migrations").await? {
            adopted += sqlx::query(
                "INSERT INTO beacon_schema_migrations (schema_name, version, description, checksum, applied_at) \
                 SELECT 'core', version, description, $1, $2 FROM _sqlx_migrations WHERE success \
                 ON CONFLICT (schema_name, version) DO NOTHING",
            )
            .bind(ADOPTED)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::raw_sql("DROP TABLE _sqlx_migrations").execute(&mut *tx).await?;
        }
        if self.table_exists(&mut tx, "beacon_module_migrations").await? {
            adopted += sqlx::query(
                "INSERT INTO beacon_schema_migrations (schema_name, version, description, checksum, applied_at) \
                 SELECT module, version, description, $1, applied_at FROM beacon_module_migrations WHERE 1 = 1 \
                 ON CONFLICT (schema_name, version) DO NOTHING",
            )
            .bind(ADOPTED)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::raw_sql("DROP TABLE beacon_module_migrations").execute(&mut *tx).await?;
        }
        if self.table_exists(&mut tx, "beacon_guild_tables").await? {
            // Guild-owned tables are declared by schemas now, not registered in the database.
            sqlx::raw_sql("DROP TABLE beacon_guild_tables").execute(&mut *tx).await?;
        }
        tx.commit().await?;
        if adopted > 0 {
            tracing::info!(versions = adopted, "adopted the migrations of an earlier release");
        }
        Ok(())
    }

    /// A write transaction that holds the schema lock: SQLite's write lock, or a PostgreSQL
    /// advisory lock held until commit, so two processes never apply the same version at once.
    async fn begin_schema_tx(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock($1)) AS schema_lock")
                .bind(SCHEMA_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    async fn table_exists(&self, tx: &mut Transaction<'static, sqlx::Any>, table: &str) -> Result<bool, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = $1"
            }
        };
        let n: i64 = sqlx::query_scalar(sql).bind(table).fetch_one(&mut **tx).await?;
        Ok(n > 0)
    }

    /// Applies `schema`'s migrations not applied yet, each once, in version order and in its
    /// own transaction, and records its guild-owned tables for [`Store::purge_guild`]. An applied
    /// version whose SQL changed since is an error. Needs [`Store::migrate`] first.
    pub async fn migrate_schema(&self, schema: &Schema) -> Result<(), StoreError> {
        crate::schema::validate(schema).map_err(StoreError::Migration)?;
        let known =
            self.shared.schemas.lock().map(|d| d.iter().find(|s| s.name == schema.name).copied()).ok().flatten();
        match known {
            Some(known) if known != *schema => {
                return Err(StoreError::Migration(format!("schema {} is declared twice, differently", schema.name)));
            }
            Some(_) => return Ok(()),
            None => {}
        }
        let mut migrations: Vec<&Migration> = schema.migrations.iter().collect();
        migrations.sort_by_key(|m| m.version);
        for m in migrations {
            self.apply_migration(schema, m).await?;
        }
        if let Ok(mut declared) = self.shared.schemas.lock()
            && !declared.iter().any(|s| s.name == schema.name)
        {
            declared.push(*schema);
        }
        Ok(())
    }

    async fn apply_migration(&self, schema: &Schema, m: &Migration) -> Result<(), StoreError> {
        let sql = m.sql_for(self.backend).map_err(StoreError::Migration)?;
        let sum = checksum(&sql);
        const APPLIED: &str = "SELECT checksum FROM beacon_schema_migrations WHERE schema_name = $1 AND version = $2";
        // The common case at every start: already applied, unchanged. Known without taking the
        // schema lock (a write transaction per migration); anything else is decided under it.
        let seen: Option<String> =
            sqlx::query_scalar(APPLIED).bind(schema.name).bind(m.version).fetch_optional(&self.pool).await?;
        if seen.as_deref() == Some(sum.as_str()) {
            return Ok(());
        }
        let mut tx = self.begin_schema_tx().await?;
        let applied: Option<String> =
            sqlx::query_scalar(APPLIED).bind(schema.name).bind(m.version).fetch_optional(&mut *tx).await?;
        match applied.as_deref() {
            Some(applied) if applied == sum => return Ok(tx.rollback().await?),
            Some(ADOPTED) => {
                // Applied by an earlier release: from now on its SQL is checked like any other.
                sqlx::query(
                    "UPDATE beacon_schema_migrations SET checksum = $1 WHERE schema_name = $2 AND version = $3",
                )
                .bind(&sum)
                .bind(schema.name)
                .bind(m.version)
                .execute(&mut *tx)
                .await?;
                return Ok(tx.commit().await?);
            }
            Some(applied) => {
                return Err(StoreError::Migration(format!(
                    "schema {} migration {} was applied but its SQL has changed (checksum {applied} != {sum})",
                    schema.name, m.version
                )));
            }
            None => {}
        }
        sqlx::raw_sql(AssertSqlSafe(sql.into_owned())).execute(&mut *tx).await.map_err(|e| {
            StoreError::Migration(format!("schema {} migration {} ({}): {e}", schema.name, m.version, m.description))
        })?;
        sqlx::query(
            "INSERT INTO beacon_schema_migrations (schema_name, version, description, checksum, applied_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(schema.name)
        .bind(m.version)
        .bind(m.description)
        .bind(&sum)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        tracing::info!(schema = schema.name, version = m.version, "applied migration");
        Ok(())
    }

    /// The schemas this process has migrated, the core first.
    pub fn schemas(&self) -> Vec<Schema> {
        self.shared.schemas.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Every guild-owned table the migrated schemas declare, in purge order: the last schema
    /// first, each schema's tables in their declared order, the core (and `guilds`) last.
    pub fn declared_guild_tables(&self) -> Vec<&'static str> {
        self.schemas().iter().rev().flat_map(|s| s.guild_tables.iter().copied()).collect()
    }

    /// The tables that have a `guild_id` column, from the database's own catalogue.
    pub async fn catalogue_guild_tables(&self) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
                 WHERE m.type = 'table' AND p.name = 'guild_id' ORDER BY m.name"
            }
            Backend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_name = 'guild_id' ORDER BY table_name"
            }
        };
        Ok(sqlx::query_scalar(sql).fetch_all(&self.pool).await?)
    }

    /// Tables with a `guild_id` column that no migrated schema declares guild-owned: a purge
    /// would leave their rows behind. Empty when every schema is complete.
    pub async fn undeclared_guild_tables(&self) -> Result<Vec<String>, StoreError> {
        let declared = self.declared_guild_tables();
        Ok(self.catalogue_guild_tables().await?.into_iter().filter(|t| !declared.contains(&t.as_str())).collect())
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let one: i64 = sqlx::query_scalar("SELECT CAST(1 AS BIGINT)").fetch_one(&self.pool).await?;
        if one == 1 { Ok(()) } else { Err(StoreError::Corrupt(format!("ping returned {one}"))) }
    }

    /// Writes a consistent copy of a running SQLite database to `dest` (a new file) with
    /// `VACUUM INTO`: one read transaction, so writers carry on and the copy is the database as of
    /// one instant, compacted, with the WAL already folded in. PostgreSQL is backed up with
    /// `pg_dump`, not through Beacon: this returns [`StoreError::Invalid`] there.
    pub async fn backup_sqlite(&self, dest: &std::path::Path) -> Result<(), StoreError> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Invalid(
                "the database is PostgreSQL: back it up with pg_dump (see the README's backup section)".into(),
            ));
        }
        let Some(path) = dest.to_str() else {
            return Err(StoreError::Invalid(format!("backup path {} is not valid UTF-8", dest.display())));
        };
        if dest.exists() {
            return Err(StoreError::Invalid(format!("backup file {path} already exists")));
        }
        sqlx::query("VACUUM INTO $1").bind(path.to_owned()).execute(&self.pool).await?;
        Ok(())
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The raw pool, for module repositories. Guild-owned queries must bind the guild id from a
    /// [`GuildStore`] (`guild.id()`), never from user input, and their tables must be declared
    /// guild-owned in the module's [`Schema`]. Use `$1, $2, …` placeholders (both backends accept them).
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

    /// Every guild Beacon is in with its last known name, by id.
    pub async fn active_guild_names(&self) -> Result<Vec<(u64, String)>, StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT guild_id, name FROM guilds WHERE left_at IS NULL ORDER BY guild_id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id, name)| (id as u64, name)).collect())
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

    /// Whether `(kind, id)` was claimed (a worker checks before an effect and records the claim
    /// with [`Store::claim_once`] after it).
    pub async fn is_claimed(&self, kind: &str, id: u64) -> Result<bool, StoreError> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM processed_claims WHERE kind = $1 AND id = $2")
            .bind(kind)
            .bind(id as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }

    /// Forgets the claim `(kind, id)`: its effect did not happen, and the next claim of it
    /// succeeds (an event delivered again after its handler failed).
    pub async fn release_claim(&self, kind: &str, id: u64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM processed_claims WHERE kind = $1 AND id = $2")
            .bind(kind)
            .bind(id as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes claims made before the unix-ms timestamp `older_than_ms`; returns how many.
    pub async fn prune_claims(&self, older_than_ms: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM processed_claims WHERE claimed_at < $1")
            .bind(older_than_ms)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Guilds marked left before the unix-ms timestamp `left_before_ms`, ascending.
    pub async fn guilds_left_before(&self, left_before_ms: i64) -> Result<Vec<u64>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT guild_id FROM guilds WHERE left_at IS NOT NULL AND left_at < $1 ORDER BY guild_id",
        )
        .bind(left_before_ms)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(|id| id as u64).collect())
    }

    /// Retention: purges (see [`Store::purge_guild`]) every guild marked left before the unix-ms
    /// timestamp `left_before_ms`. A guild that rejoined meanwhile is skipped. Returns the
    /// purged guild ids.
    pub async fn purge_left_guilds(&self, left_before_ms: i64) -> Result<Vec<u64>, StoreError> {
        let mut purged = Vec::new();
        for guild_id in self.guilds_left_before(left_before_ms).await? {
            if self.purge_guild_if_left(guild_id, left_before_ms).await?.is_some() {
                tracing::info!(guild_id, "purged data of guild past retention");
                purged.push(guild_id);
            }
        }
        Ok(purged)
    }

    /// [`Store::purge_guild`], only while the guild is still marked left before the unix-ms
    /// `left_before_ms` (checked in the purge's transaction, so a rejoin wins); `None` otherwise.
    pub async fn purge_guild_if_left(
        &self,
        guild_id: u64,
        left_before_ms: i64,
    ) -> Result<Option<Vec<(&'static str, u64)>>, StoreError> {
        self.purge_rows(guild_id, Some(left_before_ms)).await
    }

    /// Deletes every row of `guild_id` from every guild-owned table the migrated schemas declare
    /// (modules first, the guild record last), in one transaction, and tells every process to
    /// drop what it cached. Returns the rows deleted per table (tables with none left out).
    /// Files a module keeps for the guild are the module's to remove.
    pub async fn purge_guild(&self, guild_id: u64) -> Result<Vec<(&'static str, u64)>, StoreError> {
        Ok(self.purge_rows(guild_id, None).await?.unwrap_or_default())
    }

    /// The purge; with `left_before_ms`, only while the guild is still marked left before it
    /// (`None` returned otherwise).
    async fn purge_rows(
        &self,
        guild_id: u64,
        left_before_ms: Option<i64>,
    ) -> Result<Option<Vec<(&'static str, u64)>>, StoreError> {
        let id = i64::try_from(guild_id).map_err(|_| StoreError::Invalid(format!("guild id {guild_id}")))?;
        let tables = self.declared_guild_tables();
        if let Some(bad) = tables.iter().find(|t| !valid_table_name(t)) {
            return Err(StoreError::Invalid(format!("guild table {bad:?} is not a lower-case SQL identifier")));
        }
        let mut tx = self.begin_write().await?;
        if let Some(cutoff) = left_before_ms {
            // Re-check (and lock the row) inside the transaction so a concurrent rejoin wins.
            let still_left = sqlx::query(
                "UPDATE guilds SET updated_at = updated_at \
                 WHERE guild_id = $1 AND left_at IS NOT NULL AND left_at < $2",
            )
            .bind(id)
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if still_left == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let mut deleted = Vec::new();
        for table in tables {
            let n = sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE guild_id = $1")))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                deleted.push((table, n));
            }
        }
        tx.commit().await?;
        // The notice (it carries nothing but the id) makes other processes drop their caches.
        self.notify_changed(guild_id).await;
        Ok(Some(deleted))
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Begins a transaction that will write. On SQLite this takes the write lock up front
    /// (`BEGIN IMMEDIATE`) so read-then-write transactions wait on `busy_timeout` instead of
    /// failing with a busy snapshot; on PostgreSQL row locks taken by its statements (an
    /// `INSERT … ON CONFLICT DO UPDATE` of a counter) make concurrent writers wait their turn.
    /// Modules use it for read-then-write sequences that must not interleave (a per-guild
    /// counter and the row it numbers).
    pub async fn begin_write(&self) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
        begin_write(&self.pool, self.backend).await
    }

    /// Registers a guild through the registration writer (see [`crate::registrar`]): many
    /// registrations waiting at once share one transaction.
    pub(crate) async fn register_guild(&self, registration: Registration) -> Result<GuildUpsert, StoreError> {
        if let Some(queue) = &self.shared.registrations {
            let (done, outcome) = oneshot::channel();
            // A writer that stopped (only while the store is dropped) leaves the write to us.
            if queue.send(registrar::Pending { registration: registration.clone(), done }).is_ok()
                && let Ok(outcome) = outcome.await
            {
                return outcome.map_err(StoreError::Registration);
            }
        }
        let mut upserts = self.shared.registrar.register(std::slice::from_ref(&registration)).await?;
        upserts.pop().ok_or_else(|| StoreError::Corrupt("a guild registration was not written".into()))
    }
}

/// Begins a transaction that will write (see [`Store::begin_write`]).
pub(crate) async fn begin_write(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Transaction<'static, sqlx::Any>, StoreError> {
    Ok(match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await?,
        Backend::Postgres => pool.begin().await?,
    })
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

    #[tokio::test]
    async fn backup_copies_a_database_in_use_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("live.db").display())).await.expect("open");
        store.migrate().await.expect("migrate");
        store.guild(42).upsert("Answers", Some(7)).await.expect("guild");
        let dest = dir.path().join("copy.db");
        store.backup_sqlite(&dest).await.expect("backup");
        // The live database keeps taking writes while the copy is read.
        store.guild(43).upsert("Later", None).await.expect("still writable");
        let copy = Store::connect(&format!("sqlite://{}", dest.display())).await.expect("open copy");
        assert_eq!(copy.active_guild_ids().await.expect("guilds"), vec![42]);
        assert!(
            matches!(store.backup_sqlite(&dest).await, Err(StoreError::Invalid(m)) if m.contains("already exists"))
        );
    }
}
