//! The agent bridge as stored: members' accounts, session threads and the call log, always scoped
//! to one guild through a [`GuildStore`].

use beacon_store::{GuildStore, Schema, StoreError};
use sqlx::Row;

/// The agent bridge's tables.
pub(crate) const SCHEMA: Schema = Schema {
    name: "agent",
    migrations: &[beacon_store::migration!(1, "agent accounts, session threads, calls", "0001_agent.sql")],
    guild_tables: &["agent_accounts", "agent_calls", "agent_threads"],
};

/// A member's account on the agent service, with the key still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The Discord member.
    pub user_id: u64,
    /// Their user id on the agent service.
    pub service_user_id: String,
    /// The API key, sealed for this guild and member (see [`crate::flow::key_aad`]).
    pub api_key_sealed: String,
    /// The project `/agent use` remembered: id and name.
    pub current_project: Option<(String, String)>,
    /// When they registered (unix ms).
    pub created_at: i64,
}

/// The session a thread continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionThread {
    /// The thread.
    pub thread_id: u64,
    /// The member who owns the session (only their messages continue it).
    pub user_id: u64,
    /// Project id and name.
    pub project: (String, String),
    /// Session id and name.
    pub session: (String, String),
}

/// Calls to the agent service over a period, for `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Median latency of the calls, in ms.
    pub p50_ms: u64,
}

/// The agent bridge's data of one guild.
pub(crate) struct Repo {
    guild: GuildStore,
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl Repo {
    pub(crate) fn new(guild: GuildStore) -> Repo {
        Repo { guild }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.guild.store().pool()
    }

    fn gid(&self) -> i64 {
        self.guild.sql_id()
    }

    /// The member's account, if registered here.
    pub(crate) async fn account(&self, user_id: u64) -> Result<Option<Account>, StoreError> {
        let row = sqlx::query(
            "SELECT service_user_id, api_key_sealed, current_project_id, current_project_name, created_at \
             FROM agent_accounts WHERE guild_id = $1 AND user_id = $2",
        )
        .bind(self.gid())
        .bind(user_id as i64)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let project_id: Option<String> = row.try_get("current_project_id")?;
        let project_name: Option<String> = row.try_get("current_project_name")?;
        Ok(Some(Account {
            user_id,
            service_user_id: row.try_get("service_user_id")?,
            api_key_sealed: row.try_get("api_key_sealed")?,
            current_project: project_id.zip(project_name),
            created_at: row.try_get("created_at")?,
        }))
    }

    /// Registers the member (or replaces their account), forgetting any remembered project.
    pub(crate) async fn save_account(
        &self,
        user_id: u64,
        service_user_id: &str,
        sealed: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_accounts (guild_id, user_id, service_user_id, api_key_sealed, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (guild_id, user_id) DO UPDATE SET \
             service_user_id = excluded.service_user_id, api_key_sealed = excluded.api_key_sealed, \
             current_project_id = NULL, current_project_name = NULL, updated_at = excluded.updated_at",
        )
        .bind(self.gid())
        .bind(user_id as i64)
        .bind(service_user_id)
        .bind(sealed)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Replaces a sealed key (re-sealed with the current secret key).
    pub(crate) async fn reseal(&self, user_id: u64, sealed: &str, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE agent_accounts SET api_key_sealed = $3, updated_at = $4 WHERE guild_id = $1 AND user_id = $2",
        )
        .bind(self.gid())
        .bind(user_id as i64)
        .bind(sealed)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets the member's account and their session threads; `true` if they had one.
    pub(crate) async fn delete_account(&self, user_id: u64) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let n = sqlx::query("DELETE FROM agent_accounts WHERE guild_id = $1 AND user_id = $2")
            .bind(self.gid())
            .bind(user_id as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM agent_threads WHERE guild_id = $1 AND user_id = $2")
            .bind(self.gid())
            .bind(user_id as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Remembers (or forgets, with `None`) the member's current project.
    pub(crate) async fn set_current_project(
        &self,
        user_id: u64,
        project: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE agent_accounts SET current_project_id = $3, current_project_name = $4 \
             WHERE guild_id = $1 AND user_id = $2",
        )
        .bind(self.gid())
        .bind(user_id as i64)
        .bind(project.map(|p| p.0))
        .bind(project.map(|p| p.1))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records the thread a session continues in.
    pub(crate) async fn save_thread(&self, t: &SessionThread, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_threads (guild_id, thread_id, user_id, project_id, project_name, session_id, \
             session_name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (guild_id, thread_id) DO NOTHING",
        )
        .bind(self.gid())
        .bind(t.thread_id as i64)
        .bind(t.user_id as i64)
        .bind(&t.project.0)
        .bind(&t.project.1)
        .bind(&t.session.0)
        .bind(&t.session.1)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session a thread continues, if it is one of ours.
    pub(crate) async fn thread(&self, thread_id: u64) -> Result<Option<SessionThread>, StoreError> {
        let row = sqlx::query(
            "SELECT user_id, project_id, project_name, session_id, session_name FROM agent_threads \
             WHERE guild_id = $1 AND thread_id = $2",
        )
        .bind(self.gid())
        .bind(thread_id as i64)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionThread {
            thread_id,
            user_id: to_u64(row.try_get("user_id")?),
            project: (row.try_get("project_id")?, row.try_get("project_name")?),
            session: (row.try_get("session_id")?, row.try_get("session_name")?),
        }))
    }

    /// The thread of a session, if it has one.
    pub(crate) async fn thread_of_session(&self, session_id: &str) -> Result<Option<u64>, StoreError> {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT thread_id FROM agent_threads WHERE guild_id = $1 AND session_id = $2")
                .bind(self.gid())
                .bind(session_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(id.map(to_u64))
    }

    /// Forgets the threads of a deleted session or project.
    pub(crate) async fn forget_threads(&self, project_id: &str, session_id: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM agent_threads WHERE guild_id = $1 AND project_id = $2 AND ($3 = '' OR session_id = $3)",
        )
        .bind(self.gid())
        .bind(project_id)
        .bind(session_id.unwrap_or(""))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Logs one call to the service (`outcome` is `ok` or the error kind).
    pub(crate) async fn record_call(
        &self,
        user_id: u64,
        op: &str,
        outcome: &str,
        latency_ms: u64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO agent_calls (guild_id, user_id, op, outcome, latency_ms, at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(self.gid())
        .bind(user_id as i64)
        .bind(op)
        .bind(outcome)
        .bind(i64::try_from(latency_ms).unwrap_or(i64::MAX))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Calls since `since` (unix ms), for the whole guild or one member.
    pub(crate) async fn call_stats(&self, since: i64, user_id: Option<u64>) -> Result<CallStats, StoreError> {
        let rows = sqlx::query(
            "SELECT outcome, latency_ms FROM agent_calls WHERE guild_id = $1 AND at >= $2 AND ($3 = 0 OR user_id = $4) \
             ORDER BY latency_ms",
        )
        .bind(self.gid())
        .bind(since)
        .bind(i64::from(user_id.is_some()))
        .bind(user_id.map_or(0, |u| u as i64))
        .fetch_all(self.pool())
        .await?;
        let mut stats = CallStats { calls: rows.len() as u64, ..CallStats::default() };
        for row in &rows {
            let outcome: String = row.try_get("outcome")?;
            if outcome != "ok" {
                stats.errors += 1;
            }
        }
        if let Some(mid) = rows.get(rows.len() / 2) {
            stats.p50_ms = to_u64(mid.try_get("latency_ms")?);
        }
        Ok(stats)
    }
}
