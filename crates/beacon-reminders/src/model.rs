//! The reminders' storage, always for one guild (`Repo::new(guild)`).

use beacon_store::{GuildStore, Schema, StoreError, now_ms};
use sqlx::Row;
use sqlx::any::AnyRow;

/// The reminders' tables.
pub const SCHEMA: Schema = Schema {
    name: "reminders",
    migrations: &[
        beacon_store::migration!(1, "reminders and members' time zones", "0001_reminders.sql"),
        beacon_store::migration!(2, "the last run handled, for re-runs after a crash", "0002_last_run.sql"),
    ],
    guild_tables: &["reminders", "reminder_timezones"],
};

/// One pending reminder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reminder {
    /// Its number (shown by `/remind list`).
    pub id: i64,
    /// The member who set it.
    pub user_id: u64,
    /// Where it goes; `None` for a DM.
    pub channel_id: Option<u64>,
    /// What to remind of (the member's words).
    pub text: String,
    /// When it is due next, unix ms.
    pub next_at: i64,
    /// For a recurring one: every so many days …
    pub every_days: Option<i64>,
    /// … at this many minutes past local midnight …
    pub at_minute: Option<i64>,
    /// … in this time zone.
    pub tz: String,
    /// The scheduled time of the last run handled (delivered, refused or skipped), unix ms.
    pub last_run: Option<i64>,
}

fn reminder(row: &AnyRow) -> Result<Reminder, StoreError> {
    Ok(Reminder {
        id: row.try_get("id")?,
        user_id: row.try_get::<i64, _>("user_id")? as u64,
        channel_id: row.try_get::<Option<i64>, _>("channel_id")?.map(|c| c as u64),
        text: row.try_get("text")?,
        next_at: row.try_get("next_at")?,
        every_days: row.try_get("every_days")?,
        at_minute: row.try_get("at_minute")?,
        tz: row.try_get("tz")?,
        last_run: row.try_get("last_run")?,
    })
}

const COLUMNS: &str = "id, user_id, channel_id, text, next_at, every_days, at_minute, tz, last_run";

/// Guild-scoped access to reminders.
pub struct Repo {
    guild: GuildStore,
}

impl Repo {
    /// Access to `guild`'s reminders.
    pub fn new(guild: GuildStore) -> Repo {
        Repo { guild }
    }

    /// The member's time zone name, if they set one.
    pub async fn timezone(&self, user_id: u64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT tz FROM reminder_timezones WHERE guild_id = $1 AND user_id = $2")
            .bind(self.guild.sql_id())
            .bind(user_id as i64)
            .fetch_optional(self.guild.store().pool())
            .await?)
    }

    /// Sets the member's time zone.
    pub async fn set_timezone(&self, user_id: u64, tz: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO reminder_timezones (guild_id, user_id, tz, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (guild_id, user_id) DO UPDATE SET tz = excluded.tz, updated_at = excluded.updated_at",
        )
        .bind(self.guild.sql_id())
        .bind(user_id as i64)
        .bind(tz)
        .bind(now_ms())
        .execute(self.guild.store().pool())
        .await?;
        Ok(())
    }

    /// Adds a reminder unless the member already has `max` pending; `None` when they do.
    pub async fn insert(&self, r: &Reminder, max: i64) -> Result<Option<i64>, StoreError> {
        let mut tx = self.guild.store().begin_write().await?;
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reminders WHERE guild_id = $1 AND user_id = $2")
            .bind(self.guild.sql_id())
            .bind(r.user_id as i64)
            .fetch_one(&mut *tx)
            .await?;
        if pending >= max {
            tx.rollback().await?;
            return Ok(None);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO reminders (guild_id, user_id, channel_id, text, next_at, every_days, at_minute, tz, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(self.guild.sql_id())
        .bind(r.user_id as i64)
        .bind(r.channel_id.map(|c| c as i64))
        .bind(&r.text)
        .bind(r.next_at)
        .bind(r.every_days)
        .bind(r.at_minute)
        .bind(&r.tz)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// The member's pending reminders, soonest first.
    pub async fn list(&self, user_id: u64) -> Result<Vec<Reminder>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reminders WHERE guild_id = $1 AND user_id = $2 ORDER BY next_at, id"
        )))
        .bind(self.guild.sql_id())
        .bind(user_id as i64)
        .fetch_all(self.guild.store().pool())
        .await?;
        rows.iter().map(reminder).collect()
    }

    /// One reminder.
    pub async fn get(&self, id: i64) -> Result<Option<Reminder>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reminders WHERE guild_id = $1 AND id = $2"
        )))
        .bind(self.guild.sql_id())
        .bind(id)
        .fetch_optional(self.guild.store().pool())
        .await?;
        row.as_ref().map(reminder).transpose()
    }

    /// Removes a reminder (of `user_id` when given); `true` if it existed.
    pub async fn delete(&self, id: i64, user_id: Option<u64>) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM reminders WHERE guild_id = $1 AND id = $2 AND ($3 = 0 OR user_id = $3)")
            .bind(self.guild.sql_id())
            .bind(id)
            .bind(user_id.map_or(0, |u| u as i64))
            .execute(self.guild.store().pool())
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Records the run scheduled at `run` as handled and moves a recurring reminder to its next.
    pub async fn finish_run(&self, id: i64, run: i64, next_at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE reminders SET next_at = $3, last_run = $4 WHERE guild_id = $1 AND id = $2")
            .bind(self.guild.sql_id())
            .bind(id)
            .bind(next_at)
            .bind(run)
            .execute(self.guild.store().pool())
            .await?;
        Ok(())
    }
}
