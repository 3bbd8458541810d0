//! Cross-process change notices, so in-memory caches of guild data can live long and still be
//! right.
//!
//! The database is the source of truth; a process may keep a guild's settings, access list or
//! channel sets in memory as long as the guild's [`Generation`] is the one it read them under.
//! Every write that such a cache depends on records a change: the writing process's generation
//! moves at once, and a row in `guild_changes` tells every other process sharing the database,
//! which notices it within [`POLL_EVERY`] (one query per process per interval, however many
//! guilds there are). The store's own writes do this themselves (inside their transaction when
//! they have one); module repositories call [`GuildStore::mark_changed`].
//!
//! ```no_run
//! # async fn demo(store: beacon_store::Store) -> Result<(), beacon_store::StoreError> {
//! let guild = store.guild(81384788765712384);
//! let seen = guild.generation(); // before reading
//! let value = guild.setting("support.channels").await?; // from the database
//! let cached = (seen, value);
//! // later: the entry serves while the generation has not moved
//! assert!(guild.generation() == cached.0 || guild.generation() != cached.0);
//! # Ok(())
//! # }
//! ```
//!
//! Rows are read by time with an overlap (a PostgreSQL sequence value can commit after a larger
//! one), so a notice can be applied twice; that only costs one extra reload. When the poll fails
//! the process cannot know what it missed and moves every guild's generation.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Any, AnyPool, Executor, Row};

use crate::error::StoreError;
use crate::guild::GuildStore;
use crate::now_ms;
use crate::store::Store;

/// How often a process reads the notices of the others.
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// How far back each poll looks (covers late commits and small clock differences between hosts).
pub const OVERLAP_MS: i64 = 10_000;
/// Notices older than this are deleted.
const KEEP_MS: i64 = 3_600_000;
/// How often old notices are deleted.
const PRUNE_EVERY_POLLS: u64 = 600;

/// A guild's cache generation: cached data read under one generation is valid while the guild's
/// generation is still equal to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Generation {
    everything: u64,
    guild: u64,
}

/// The generations of one process's caches.
#[derive(Debug)]
pub(crate) struct Generations {
    /// Moves when the process may have missed notices (every guild is then stale).
    everything: AtomicU64,
    /// Guilds with at least one change since start; absent means 0.
    guilds: Mutex<HashMap<u64, u64>>,
    /// This process, so its own notices are not applied twice.
    pub(crate) origin: i64,
}

impl Generations {
    pub(crate) fn new() -> Generations {
        Generations { everything: AtomicU64::new(0), guilds: Mutex::new(HashMap::new()), origin: new_origin() }
    }

    pub(crate) fn get(&self, guild_id: u64) -> Generation {
        let guild = self.guilds.lock().map(|g| g.get(&guild_id).copied().unwrap_or(0)).unwrap_or(0);
        Generation { everything: self.everything.load(Ordering::Acquire), guild }
    }

    pub(crate) fn bump(&self, guild_id: u64) {
        match self.guilds.lock() {
            Ok(mut g) => *g.entry(guild_id).or_insert(0) += 1,
            // A poisoned map cannot be trusted to move: invalidate everything instead.
            Err(_) => self.bump_all(),
        }
    }

    pub(crate) fn bump_all(&self) {
        self.everything.fetch_add(1, Ordering::AcqRel);
    }
}

/// A process id for notices: unique enough among the processes sharing one database.
fn new_origin() -> i64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 40)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 1) as i64
}

/// Records a change notice for `guild_id` (inside the writer's transaction when given one).
pub(crate) async fn insert_notice<'e, E>(executor: E, guild_id: u64, origin: i64) -> Result<(), StoreError>
where
    E: Executor<'e, Database = Any>,
{
    sqlx::query("INSERT INTO guild_changes (guild_id, origin, changed_at) VALUES ($1, $2, $3)")
        .bind(guild_id as i64)
        .bind(origin)
        .bind(now_ms())
        .execute(executor)
        .await?;
    Ok(())
}

/// Reads the other processes' notices every [`POLL_EVERY`] and moves the generations they name.
pub(crate) async fn follow(pool: AnyPool, generations: std::sync::Weak<Generations>) {
    let mut seen: HashMap<i64, i64> = HashMap::new();
    let mut since = now_ms();
    let mut failing = false;
    let mut tick = tokio::time::interval(POLL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for poll in 0u64.. {
        tick.tick().await;
        let Some(generations) = generations.upgrade() else { break };
        if pool.is_closed() {
            break;
        }
        let started = now_ms();
        match read_notices(&pool, since - OVERLAP_MS, generations.origin).await {
            Ok(rows) => {
                let mut guilds = HashSet::new();
                for (seq, guild_id, at) in rows {
                    if seen.insert(seq, at).is_none() {
                        guilds.insert(guild_id);
                    }
                }
                for guild_id in guilds {
                    generations.bump(guild_id);
                }
                if failing {
                    // Whatever happened while the database was unreachable is unknown.
                    generations.bump_all();
                    failing = false;
                    tracing::info!("change notices readable again; in-memory guild caches reloaded");
                }
                since = started;
                seen.retain(|_, at| *at >= since - 2 * OVERLAP_MS);
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot read change notices; caches reload when it recovers");
                }
                failing = true;
            }
        }
        if poll % PRUNE_EVERY_POLLS == PRUNE_EVERY_POLLS - 1
            && let Err(e) = sqlx::query("DELETE FROM guild_changes WHERE changed_at < $1")
                .bind(now_ms() - KEEP_MS)
                .execute(&pool)
                .await
        {
            tracing::debug!(error = %e, "pruning change notices failed; retried later");
        }
    }
}

async fn read_notices(pool: &AnyPool, since: i64, origin: i64) -> Result<Vec<(i64, u64, i64)>, StoreError> {
    let rows =
        sqlx::query("SELECT seq, guild_id, changed_at FROM guild_changes WHERE changed_at >= $1 AND origin <> $2")
            .bind(since)
            .bind(origin)
            .fetch_all(pool)
            .await?;
    rows.iter()
        .map(|r| Ok((r.try_get::<i64, _>("seq")?, r.try_get::<i64, _>("guild_id")? as u64, r.try_get("changed_at")?)))
        .collect()
}

/// A setting change made by another process sharing the database (see
/// [`Store::setting_changes_elsewhere`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SettingChangeElsewhere {
    /// Id of its audit row (increasing, but not committed in order on PostgreSQL).
    pub audit_id: i64,
    /// The guild whose setting changed.
    pub guild_id: u64,
    /// Setting key.
    pub key: String,
    /// Override before (`None` = default).
    pub old: Option<serde_json::Value>,
    /// Override after (`None` = default).
    pub new: Option<serde_json::Value>,
    /// Who made the change.
    pub actor_id: u64,
    /// When, unix ms.
    pub at: i64,
}

impl Store {
    /// The setting changes other processes made at or after `since_ms` (unix ms), oldest first.
    /// Read by time, so a caller polling with an overlap sees a change more than once and keeps
    /// the audit ids it has announced.
    pub async fn setting_changes_elsewhere(&self, since_ms: i64) -> Result<Vec<SettingChangeElsewhere>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, guild_id, key, old_value, new_value, actor_id, at FROM setting_audit \
             WHERE at >= $1 AND origin <> $2 AND origin <> 0 ORDER BY id",
        )
        .bind(since_ms)
        .bind(self.origin())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SettingChangeElsewhere {
                    audit_id: r.try_get("id")?,
                    guild_id: r.try_get::<i64, _>("guild_id")? as u64,
                    key: r.try_get("key")?,
                    old: crate::store::json_column(r, "old_value")?,
                    new: crate::store::json_column(r, "new_value")?,
                    actor_id: r.try_get::<i64, _>("actor_id")? as u64,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}

impl GuildStore {
    /// The guild's cache generation now: read it *before* loading data to cache, and serve the
    /// cached data while it stays equal (see the module docs).
    pub fn generation(&self) -> Generation {
        self.store().generation(self.id())
    }

    /// Tells every process's caches that this guild's data changed: this process's at once,
    /// the others' within [`POLL_EVERY`]. Module repositories call it after writing data that
    /// other processes may hold in memory (e.g. the set of ticket channels).
    pub async fn mark_changed(&self) -> Result<(), StoreError> {
        self.store().bump_generation(self.id());
        insert_notice(self.store().pool(), self.id(), self.store().origin()).await
    }
}
