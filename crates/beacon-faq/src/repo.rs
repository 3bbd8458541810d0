//! The FAQ's tables and every query on them. The database is the source of truth; the search
//! index is rebuilt from it.

use beacon_store::{GuildStore, Schema, Store, now_ms};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use tokio::sync::broadcast;

use crate::error::FaqError;
use crate::model::{ChangeKind, EntryInput, FaqChanged, FaqEntry, Gap, ImportReport, LoggedSearch};

/// The FAQ's tables: entries, per-guild counters and the search log, all guild-owned.
pub const SCHEMA: Schema = Schema {
    name: "faq",
    migrations: &[beacon_store::migration!(1, "faq entries, per-guild counters and search log", "0001_faq.sql")],
    guild_tables: &["faq_entries", "faq_counters", "faq_search_log"],
};

/// Capacity of the change channel; a receiver that falls further behind gets `Lagged` and should
/// catch up with [`FaqRepo::entries_since`].
const CHANGE_CAPACITY: usize = 1024;

const COLUMNS: &str = "guild_id, id, question, answer, tags, pinned, created_by, updated_by, \
                       created_at, updated_at, views, deleted_at";

/// Reads and writes FAQ entries and the search log, and announces every change.
///
/// Every method takes the guild as a [`GuildStore`] and binds its id, so one guild's entries are
/// never read or changed through another's scope. Cheap to clone (clones share the channel).
#[derive(Clone)]
pub struct FaqRepo {
    store: Store,
    feeds: Feeds,
}

/// Where a [`FaqRepo`] announces its changes: each change in full, and the guild it touched
/// (what the knowledge base follows). Cheap to clone; clones announce to the same listeners.
#[derive(Clone, Debug)]
pub struct Feeds {
    changes: broadcast::Sender<FaqChanged>,
    guilds: broadcast::Sender<u64>,
}

impl Default for Feeds {
    fn default() -> Self {
        Feeds { changes: broadcast::channel(CHANGE_CAPACITY).0, guilds: broadcast::channel(CHANGE_CAPACITY).0 }
    }
}

impl Feeds {
    /// Every change, in every guild.
    pub fn subscribe(&self) -> broadcast::Receiver<FaqChanged> {
        self.changes.subscribe()
    }

    /// The id of each guild whose entries changed.
    pub fn subscribe_guilds(&self) -> broadcast::Receiver<u64> {
        self.guilds.subscribe()
    }
}

fn entry_from_row(row: &AnyRow) -> Result<FaqEntry, FaqError> {
    let tags: String = row.try_get("tags")?;
    Ok(FaqEntry {
        guild_id: row.try_get::<i64, _>("guild_id")? as u64,
        id: row.try_get::<i64, _>("id")? as u64,
        question: row.try_get("question")?,
        answer: row.try_get("answer")?,
        tags: tags.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        pinned: row.try_get::<i64, _>("pinned")? != 0,
        created_by: row.try_get::<i64, _>("created_by")? as u64,
        updated_by: row.try_get::<i64, _>("updated_by")? as u64,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        views: row.try_get::<i64, _>("views")?.max(0) as u64,
        deleted_at: row.try_get("deleted_at")?,
    })
}

fn sql_id(id: u64) -> Result<i64, FaqError> {
    i64::try_from(id).map_err(|_| FaqError::NotFound(id))
}

impl FaqRepo {
    /// A repository with its own change channels.
    pub fn new(store: Store) -> FaqRepo {
        FaqRepo { store, feeds: Feeds::default() }
    }

    /// A repository announcing changes on existing channels (shared with other repositories).
    pub fn with_feeds(store: Store, feeds: Feeds) -> FaqRepo {
        FaqRepo { store, feeds }
    }

    /// Listens for changes in every guild (in this process). A receiver that lags should re-read
    /// with [`FaqRepo::entries_since`].
    pub fn subscribe(&self) -> broadcast::Receiver<FaqChanged> {
        self.feeds.subscribe()
    }

    fn announce(&self, guild: &GuildStore, entry_id: u64, kind: ChangeKind) {
        // No receiver is fine: nobody needs to know.
        let _ = self.feeds.changes.send(FaqChanged { guild_id: guild.id(), entry_id, kind });
        let _ = self.feeds.guilds.send(guild.id());
    }

    async fn next_id(tx: &mut Transaction<'static, Any>, guild: &GuildStore) -> Result<i64, FaqError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO faq_counters (guild_id, last_id) VALUES ($1, 1) \
             ON CONFLICT (guild_id) DO UPDATE SET last_id = faq_counters.last_id + 1 \
             RETURNING last_id",
        )
        .bind(guild.sql_id())
        .fetch_one(&mut **tx)
        .await?)
    }

    /// Adds an entry with the next number of the guild. Refuses a question that already exists.
    pub async fn add(&self, guild: &GuildStore, input: &EntryInput, actor: u64) -> Result<FaqEntry, FaqError> {
        if let Some(existing) = self.find_by_question(guild, &input.question).await? {
            return Err(FaqError::Invalid(format!(
                "FAQ entry #{existing} already asks this question; edit it with `/faq edit id:{existing}`."
            )));
        }
        let now = now_ms();
        let mut tx = self.store.pool().begin().await?;
        // The first statement writes, so SQLite takes the write lock before anything is read.
        let id = Self::next_id(&mut tx, guild).await?;
        sqlx::query(
            "INSERT INTO faq_entries (guild_id, id, question, answer, tags, pinned, created_by, \
             updated_by, created_at, updated_at, views, deleted_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $8, 0, NULL)",
        )
        .bind(guild.sql_id())
        .bind(id)
        .bind(&input.question)
        .bind(&input.answer)
        .bind(input.tags.join(","))
        .bind(i64::from(input.pinned))
        .bind(actor as i64)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let entry = self.get(guild, id as u64).await?.ok_or(FaqError::NotFound(id as u64))?;
        self.announce(guild, entry.id, ChangeKind::Added);
        Ok(entry)
    }

    /// Replaces the question, answer, tags and pin of a live entry.
    pub async fn update(
        &self,
        guild: &GuildStore,
        id: u64,
        input: &EntryInput,
        actor: u64,
    ) -> Result<FaqEntry, FaqError> {
        if let Some(existing) = self.find_by_question(guild, &input.question).await?
            && existing != id
        {
            return Err(FaqError::Invalid(format!("FAQ entry #{existing} already asks this question.")));
        }
        let changed = sqlx::query(
            "UPDATE faq_entries SET question = $3, answer = $4, tags = $5, pinned = $6, \
             updated_by = $7, updated_at = $8 \
             WHERE guild_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(guild.sql_id())
        .bind(sql_id(id)?)
        .bind(&input.question)
        .bind(&input.answer)
        .bind(input.tags.join(","))
        .bind(i64::from(input.pinned))
        .bind(actor as i64)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(FaqError::NotFound(id));
        }
        let entry = self.get(guild, id).await?.ok_or(FaqError::NotFound(id))?;
        self.announce(guild, id, ChangeKind::Updated);
        Ok(entry)
    }

    /// Removes a live entry (kept as a tombstone so [`FaqRepo::entries_since`] reports it).
    pub async fn remove(&self, guild: &GuildStore, id: u64, actor: u64) -> Result<FaqEntry, FaqError> {
        let entry = self.get(guild, id).await?.ok_or(FaqError::NotFound(id))?;
        let now = now_ms();
        let changed = sqlx::query(
            "UPDATE faq_entries SET deleted_at = $3, updated_at = $3, updated_by = $4 \
             WHERE guild_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(guild.sql_id())
        .bind(sql_id(id)?)
        .bind(now)
        .bind(actor as i64)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(FaqError::NotFound(id));
        }
        self.announce(guild, id, ChangeKind::Removed);
        Ok(FaqEntry { deleted_at: Some(now), updated_at: now, updated_by: actor, ..entry })
    }

    /// A live entry by its number.
    pub async fn get(&self, guild: &GuildStore, id: u64) -> Result<Option<FaqEntry>, FaqError> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM faq_entries \
             WHERE guild_id = $1 AND id = $2 AND deleted_at IS NULL"
        )))
        .bind(guild.sql_id())
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        row.map(|r| entry_from_row(&r)).transpose()
    }

    /// The number of the live entry asking this question (case-insensitive), if any.
    pub async fn find_by_question(&self, guild: &GuildStore, question: &str) -> Result<Option<u64>, FaqError> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM faq_entries WHERE guild_id = $1 AND deleted_at IS NULL \
             AND LOWER(question) = LOWER($2) ORDER BY id LIMIT 1",
        )
        .bind(guild.sql_id())
        .bind(question.trim())
        .fetch_optional(self.store.pool())
        .await?;
        Ok(id.map(|i| i as u64))
    }

    /// Counts one more view of a live entry.
    pub async fn record_view(&self, guild: &GuildStore, id: u64) -> Result<(), FaqError> {
        sqlx::query(
            "UPDATE faq_entries SET views = views + 1 \
             WHERE guild_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(guild.sql_id())
        .bind(sql_id(id)?)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    async fn select(
        &self,
        guild: &GuildStore,
        filter_and_order: &str,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<FaqEntry>, FaqError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM faq_entries WHERE guild_id = $1 AND deleted_at IS NULL \
             {filter_and_order} LIMIT $2 OFFSET $3"
        )))
        .bind(guild.sql_id())
        .bind(limit)
        .bind(offset)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Live entries, most recently changed first.
    pub async fn list_recent(&self, guild: &GuildStore, limit: u32, offset: u32) -> Result<Vec<FaqEntry>, FaqError> {
        self.select(guild, "ORDER BY updated_at DESC, id DESC", limit.into(), offset.into()).await
    }

    /// Pinned live entries, by number.
    pub async fn list_pinned(&self, guild: &GuildStore, limit: u32, offset: u32) -> Result<Vec<FaqEntry>, FaqError> {
        self.select(guild, "AND pinned = 1 ORDER BY id", limit.into(), offset.into()).await
    }

    /// Every live entry, by number.
    pub async fn all(&self, guild: &GuildStore) -> Result<Vec<FaqEntry>, FaqError> {
        self.select(guild, "ORDER BY id", i64::MAX, 0).await
    }

    /// How many live entries (and how many of them pinned).
    pub async fn count(&self, guild: &GuildStore) -> Result<(u64, u64), FaqError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, COALESCE(SUM(pinned), 0) AS p FROM faq_entries \
             WHERE guild_id = $1 AND deleted_at IS NULL",
        )
        .bind(guild.sql_id())
        .fetch_one(self.store.pool())
        .await?;
        let n: i64 = row.try_get("n")?;
        let p: i64 = row.try_get("p")?;
        Ok((n.max(0) as u64, p.max(0) as u64))
    }

    /// Entries (live and removed) changed after `updated_after_ms`, oldest change first: what a
    /// consumer such as the knowledge base re-indexes. Removed entries have `deleted_at` set.
    pub async fn entries_since(&self, guild: &GuildStore, updated_after_ms: i64) -> Result<Vec<FaqEntry>, FaqError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM faq_entries WHERE guild_id = $1 AND updated_at > $2 \
             ORDER BY updated_at, id"
        )))
        .bind(guild.sql_id())
        .bind(updated_after_ms)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(entry_from_row).collect()
    }

    /// Records a search: its normalised term, with personal data redacted (a member may search for
    /// their own e-mail address or phone number), and how many entries it found.
    pub async fn log_search(&self, guild: &GuildStore, term: &str, hits: usize) -> Result<(), FaqError> {
        sqlx::query("INSERT INTO faq_search_log (guild_id, term, hits, at) VALUES ($1, $2, $3, $4)")
            .bind(guild.sql_id())
            .bind(beacon_pii::redact(term))
            .bind(hits as i64)
            .bind(now_ms())
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// The searches since `since_ms`, newest first (at most `limit`), each with how many
    /// entries it found.
    pub async fn searches(&self, guild: &GuildStore, since_ms: i64, limit: u32) -> Result<Vec<LoggedSearch>, FaqError> {
        let sql =
            "SELECT term, hits, at FROM faq_search_log WHERE guild_id = $1 AND at >= $2 ORDER BY at DESC LIMIT $3";
        let rows = self.search_log(guild, sql, since_ms, limit).await?;
        rows.iter()
            .map(|r| Ok(LoggedSearch { term: logged_term(r)?, hits: count(r, "hits")?, at: r.try_get("at")? }))
            .collect()
    }

    /// The terms searched most often since `since_ms` without finding anything.
    pub async fn gaps(&self, guild: &GuildStore, since_ms: i64, limit: u32) -> Result<Vec<Gap>, FaqError> {
        let sql = "SELECT term, COUNT(*) AS searches, MAX(at) AS last_at FROM faq_search_log \
                   WHERE guild_id = $1 AND hits = 0 AND at >= $2 \
                   GROUP BY term ORDER BY searches DESC, last_at DESC, term LIMIT $3";
        let rows = self.search_log(guild, sql, since_ms, limit).await?;
        rows.iter()
            .map(|r| Ok(Gap { term: logged_term(r)?, searches: count(r, "searches")?, last_at: r.try_get("last_at")? }))
            .collect()
    }

    /// Runs one of the search-log reports: `sql` over `faq_search_log` with `$1` the guild,
    /// `$2` the earliest time and `$3` the most rows.
    async fn search_log(
        &self,
        guild: &GuildStore,
        sql: &'static str,
        since_ms: i64,
        limit: u32,
    ) -> Result<Vec<AnyRow>, FaqError> {
        Ok(sqlx::query(sql)
            .bind(guild.sql_id())
            .bind(since_ms)
            .bind(i64::from(limit))
            .fetch_all(self.store.pool())
            .await?)
    }

    /// Writes imported rows in one transaction. A row with an `id` creates or replaces that
    /// entry (restoring a removed one); a row without one updates the entry asking the same
    /// question, or becomes a new entry.
    pub async fn import(
        &self,
        guild: &GuildStore,
        rows: &[(Option<u64>, EntryInput)],
        actor: u64,
    ) -> Result<ImportReport, FaqError> {
        let mut max_id: i64 = 0;
        for (id, _) in rows {
            if let Some(id) = id {
                max_id = max_id.max(sql_id(*id)?);
            }
        }
        let now = now_ms();
        let mut report = ImportReport::default();
        let mut changes = Vec::with_capacity(rows.len());
        let mut tx = self.store.pool().begin().await?;
        // Written first: takes SQLite's write lock, and keeps new numbers above imported ones.
        sqlx::query(
            "INSERT INTO faq_counters (guild_id, last_id) VALUES ($1, $2) \
             ON CONFLICT (guild_id) DO UPDATE SET last_id = CASE \
             WHEN faq_counters.last_id < excluded.last_id THEN excluded.last_id \
             ELSE faq_counters.last_id END",
        )
        .bind(guild.sql_id())
        .bind(max_id)
        .execute(&mut *tx)
        .await?;
        for (id, input) in rows {
            let target = match id {
                Some(id) => Some(sql_id(*id)?),
                None => {
                    sqlx::query_scalar(
                        "SELECT id FROM faq_entries WHERE guild_id = $1 AND deleted_at IS NULL \
                         AND LOWER(question) = LOWER($2) ORDER BY id LIMIT 1",
                    )
                    .bind(guild.sql_id())
                    .bind(&input.question)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
            let existed = match target {
                Some(t) => sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM faq_entries \
                     WHERE guild_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(guild.sql_id())
                .bind(t)
                .fetch_one(&mut *tx)
                .await?
                .gt(&0),
                None => false,
            };
            let id = match target {
                Some(t) => t,
                None => Self::next_id(&mut tx, guild).await?,
            };
            sqlx::query(
                "INSERT INTO faq_entries (guild_id, id, question, answer, tags, pinned, \
                 created_by, updated_by, created_at, updated_at, views, deleted_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $8, 0, NULL) \
                 ON CONFLICT (guild_id, id) DO UPDATE SET question = excluded.question, \
                 answer = excluded.answer, tags = excluded.tags, pinned = excluded.pinned, \
                 updated_by = excluded.updated_by, updated_at = excluded.updated_at, \
                 deleted_at = NULL",
            )
            .bind(guild.sql_id())
            .bind(id)
            .bind(&input.question)
            .bind(&input.answer)
            .bind(input.tags.join(","))
            .bind(i64::from(input.pinned))
            .bind(actor as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if existed {
                report.updated += 1;
                changes.push((id as u64, ChangeKind::Updated));
            } else {
                report.added += 1;
                changes.push((id as u64, ChangeKind::Added));
            }
        }
        tx.commit().await?;
        for (id, kind) in changes {
            self.announce(guild, id, kind);
        }
        Ok(report)
    }
}

/// A logged search term as reports show it: terms logged before redaction are redacted when read.
fn logged_term(row: &AnyRow) -> Result<String, sqlx::Error> {
    Ok(beacon_pii::redact(&row.try_get::<String, _>("term")?))
}

/// A count column (never negative).
fn count(row: &AnyRow, column: &str) -> Result<u64, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)?.max(0) as u64)
}
