//! Group commit for guild registrations ([`crate::GuildStore::upsert`] and
//! [`crate::GuildStore::register`]).
//!
//! At start-up every shard receives one GUILD_CREATE per guild, thousands at once. One
//! transaction per guild made the database's single writer (SQLite) the limit of how fast a
//! bot in 10k guilds became ready. Registrations go to one writer task instead, which writes
//! everything waiting in one transaction of a few multi-row statements and tells each caller
//! its outcome. A lone registration is written at once (no timer), so the latency of a single
//! join is one transaction as before.
//!
//! Nothing is lost if the process dies mid-batch: the transaction is not committed, no caller
//! was told its guild is registered, and the next GUILD_CREATE (Discord sends every guild again
//! on the next connection) registers it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, AssertSqlSafe, Row, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::changes::Generations;
use crate::error::StoreError;
use crate::guild::{GuildRecord, GuildUpsert};
use crate::now_ms;
use crate::store::{Backend, begin_write};

/// Most guilds written by one transaction (at most 3 bound values per row in a statement, far
/// below both backends' limits).
pub(crate) const MAX_BATCH: usize = 256;

/// One guild to record as joined.
#[derive(Debug, Clone)]
pub(crate) struct Registration {
    pub(crate) guild_id: u64,
    pub(crate) name: String,
    pub(crate) owner_id: Option<u64>,
    /// Make the owner the first authorized user when the guild is new.
    pub(crate) grant_owner: bool,
}

/// A registration waiting for the writer.
pub(crate) struct Pending {
    pub(crate) registration: Registration,
    pub(crate) done: oneshot::Sender<Result<GuildUpsert, Arc<StoreError>>>,
}

/// What the writer needs of the store (not the store itself: the writer must not keep the
/// store's shared state alive).
#[derive(Clone)]
pub(crate) struct Writer {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    pub(crate) generations: Arc<Generations>,
}

/// Writes queued registrations until every sender is gone.
pub(crate) async fn write_registrations(writer: Writer, mut queue: mpsc::UnboundedReceiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let registrations: Vec<Registration> = batch.iter().map(|p| p.registration.clone()).collect();
        let outcome = writer.register(&registrations).await.map_err(Arc::new);
        for (i, pending) in batch.drain(..).enumerate() {
            let result = match &outcome {
                Ok(upserts) => Ok(upserts[i].clone()),
                Err(e) => Err(e.clone()),
            };
            // A caller that gave up waiting has nothing to be told.
            let _ = pending.done.send(result);
        }
    }
}

/// Where the locks of a read-then-write differ: SQLite's `BEGIN IMMEDIATE` already holds the
/// only write lock for the whole transaction; PostgreSQL locks the rows read.
fn lock_rows(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    }
}

/// The `VALUES` rows of a multi-row statement: `$1` is the time every row shares, and row `r`
/// binds `width` values from `$2 + r * width` on, placed by `row` (given its first number).
fn values(rows: usize, width: usize, row: impl Fn(usize) -> String) -> String {
    (0..rows).map(|r| row(2 + r * width)).collect::<Vec<_>>().join(", ")
}

impl Writer {
    /// Registers every guild of `batch` (a guild named twice is registered in order, the later
    /// in a second round) and returns each entry's outcome, in order.
    pub(crate) async fn register(&self, batch: &[Registration]) -> Result<Vec<GuildUpsert>, StoreError> {
        let mut out: Vec<Option<GuildUpsert>> = vec![None; batch.len()];
        let mut remaining: Vec<usize> = (0..batch.len()).collect();
        while !remaining.is_empty() {
            let mut seen = HashSet::new();
            let (mut round, later): (Vec<usize>, Vec<usize>) =
                remaining.into_iter().partition(|&i| seen.insert(batch[i].guild_id));
            // Rows locked in one order by every writer: two processes' batches never deadlock.
            round.sort_unstable_by_key(|&i| batch[i].guild_id);
            let entries: Vec<&Registration> = round.iter().map(|&i| &batch[i]).collect();
            for (i, upsert) in round.into_iter().zip(self.register_distinct(&entries).await?) {
                out[i] = Some(upsert);
            }
            remaining = later;
        }
        out.into_iter()
            .map(|u| u.ok_or_else(|| StoreError::Corrupt("a guild registration was not written".into())))
            .collect()
    }

    /// One transaction for guilds that are all distinct.
    async fn register_distinct(&self, entries: &[&Registration]) -> Result<Vec<GuildUpsert>, StoreError> {
        let now = now_ms();
        let mut tx = begin_write(&self.pool, self.backend).await?;
        let created = insert_new(&mut tx, entries, now).await?;
        let existing: Vec<&Registration> = entries.iter().copied().filter(|r| !created.contains(&r.guild_id)).collect();
        let before = self.read_locked(&mut tx, &existing).await?;
        let mut upserts = Vec::with_capacity(entries.len());
        let mut updates = Vec::new();
        for r in entries {
            let owner = r.owner_id;
            let (upsert, changed) = match before.get(&r.guild_id) {
                Some(b) if !created.contains(&r.guild_id) => {
                    let rejoined = b.left_at.is_some();
                    let changed = rejoined || b.name != r.name || b.owner_id != owner;
                    let joined_at = if rejoined { now } else { b.joined_at };
                    let record =
                        GuildRecord { id: r.guild_id, name: r.name.clone(), owner_id: owner, joined_at, left_at: None };
                    (GuildUpsert { record, created: false, rejoined, owner_granted: false }, changed)
                }
                _ => {
                    let record = GuildRecord {
                        id: r.guild_id,
                        name: r.name.clone(),
                        owner_id: owner,
                        joined_at: now,
                        left_at: None,
                    };
                    (GuildUpsert { record, created: true, rejoined: false, owner_granted: false }, true)
                }
            };
            if changed && !upsert.created {
                updates.push(*r);
            }
            upserts.push(upsert);
        }
        update_existing(&mut tx, &updates, now).await?;
        let owners: Vec<(u64, u64)> = entries
            .iter()
            .filter(|r| r.grant_owner && created.contains(&r.guild_id))
            .filter_map(|r| r.owner_id.map(|o| (r.guild_id, o)))
            .collect();
        let granted = grant_owners(&mut tx, &owners, now).await?;
        for u in &mut upserts {
            u.owner_granted = granted.contains(&u.record.id);
        }
        // Every changed guild's notice in the same transaction: it cannot be lost when the
        // change lands.
        let changed: Vec<u64> = upserts
            .iter()
            .filter(|u| u.created || u.rejoined || u.owner_granted || updates.iter().any(|r| r.guild_id == u.record.id))
            .map(|u| u.record.id)
            .collect();
        insert_notices(&mut tx, &changed, self.generations.origin, now).await?;
        tx.commit().await?;
        for guild_id in changed {
            self.generations.bump(guild_id);
        }
        Ok(upserts)
    }

    /// The current records of `entries`, locked until the transaction ends.
    async fn read_locked(
        &self,
        tx: &mut Transaction<'static, Any>,
        entries: &[&Registration],
    ) -> Result<HashMap<u64, GuildRecord>, StoreError> {
        if entries.is_empty() {
            return Ok(HashMap::new());
        }
        let list: Vec<String> = (1..=entries.len()).map(|n| format!("${n}")).collect();
        let sql = format!(
            "SELECT guild_id, name, owner_id, joined_at, left_at FROM guilds WHERE guild_id IN ({}){}",
            list.join(", "),
            lock_rows(self.backend)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for r in entries {
            query = query.bind(r.guild_id as i64);
        }
        let rows = query.fetch_all(&mut **tx).await?;
        rows.iter().map(|row| crate::guild::record_from_row(row).map(|r| (r.id, r))).collect()
    }
}

/// Inserts the guilds never seen before; returns their ids.
async fn insert_new(
    tx: &mut Transaction<'static, Any>,
    entries: &[&Registration],
    now: i64,
) -> Result<HashSet<u64>, StoreError> {
    let sql = format!(
        "INSERT INTO guilds (guild_id, name, owner_id, joined_at, left_at, updated_at) VALUES {} \
         ON CONFLICT (guild_id) DO NOTHING RETURNING guild_id",
        values(entries.len(), 3, guild_row)
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
    for r in entries {
        query = query.bind(r.guild_id as i64).bind(r.name.as_str()).bind(r.owner_id.map(|o| o as i64));
    }
    ids(query.fetch_all(&mut **tx).await?)
}

/// Updates name and owner of guilds already known, and marks the ones that had left as back.
async fn update_existing(
    tx: &mut Transaction<'static, Any>,
    entries: &[&Registration],
    now: i64,
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO guilds (guild_id, name, owner_id, joined_at, left_at, updated_at) VALUES {} \
         ON CONFLICT (guild_id) DO UPDATE SET name = excluded.name, owner_id = excluded.owner_id, \
         joined_at = CASE WHEN guilds.left_at IS NULL THEN guilds.joined_at ELSE excluded.joined_at END, \
         left_at = NULL, updated_at = excluded.updated_at",
        values(entries.len(), 3, guild_row)
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
    for r in entries {
        query = query.bind(r.guild_id as i64).bind(r.name.as_str()).bind(r.owner_id.map(|o| o as i64));
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Makes each new guild's owner its first authorized user; returns the guilds where it was.
async fn grant_owners(
    tx: &mut Transaction<'static, Any>,
    owners: &[(u64, u64)],
    now: i64,
) -> Result<HashSet<u64>, StoreError> {
    if owners.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "INSERT INTO authorized_users (guild_id, user_id, granted_by, granted_at) VALUES {} \
         ON CONFLICT (guild_id, user_id) DO NOTHING RETURNING guild_id",
        values(owners.len(), 2, |n| format!("(${n}, ${}, NULL, $1)", n + 1))
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
    for (guild, owner) in owners {
        query = query.bind(*guild as i64).bind(*owner as i64);
    }
    ids(query.fetch_all(&mut **tx).await?)
}

/// Records a change notice for each guild (see [`crate::changes`]).
async fn insert_notices(
    tx: &mut Transaction<'static, Any>,
    guilds: &[u64],
    origin: i64,
    now: i64,
) -> Result<(), StoreError> {
    if guilds.is_empty() {
        return Ok(());
    }
    // `$1` is the time, `$2` this process; row `r` binds the guild as `$(3 + r)`.
    let list: Vec<String> = (0..guilds.len()).map(|r| format!("(${}, $2, $1)", r + 3)).collect();
    let sql = format!("INSERT INTO guild_changes (guild_id, origin, changed_at) VALUES {}", list.join(", "));
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(origin);
    for g in guilds {
        query = query.bind(*g as i64);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// A `guilds` row binding id, name and owner from `$n`, with the shared time `$1`.
fn guild_row(n: usize) -> String {
    format!("(${n}, ${}, ${}, $1, NULL, $1)", n + 1, n + 2)
}

fn ids(rows: Vec<AnyRow>) -> Result<HashSet<u64>, StoreError> {
    rows.iter().map(|r| Ok(r.try_get::<i64, _>("guild_id")? as u64)).collect()
}

#[cfg(test)]
mod tests {
    use super::{guild_row, values};

    #[test]
    fn rows_number_their_values_after_the_shared_time() {
        assert_eq!(values(2, 3, guild_row), "($2, $3, $4, $1, NULL, $1), ($5, $6, $7, $1, NULL, $1)");
    }
}
