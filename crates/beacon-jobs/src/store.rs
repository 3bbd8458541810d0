//! The `beacon_jobs` table and the queries on it.

use beacon_store::{Backend, Schema, Store, now_ms};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use crate::{Job, JobError};

/// How many times a job runs before it is marked failed, unless scheduled otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;

/// The job table (schema `jobs`). The framework migrates it in every app; [`Jobs::migrate`]
/// does it for a store used without one.
pub const SCHEMA: Schema = Schema {
    name: "jobs",
    migrations: &[beacon_store::migration!(1, "durable jobs with leases", "0001_jobs.sql")],
    guild_tables: &["beacon_jobs"],
};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for `run_at` (also after a failed attempt that will be retried).
    Pending,
    /// Claimed by a worker whose lease runs until `lease_until`.
    Running,
    /// Finished successfully; never runs again.
    Done,
    /// Out of attempts, or failed permanently.
    Failed,
    /// Cancelled before it ran.
    Cancelled,
}

impl JobState {
    /// The name stored in the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "pending" => JobState::Pending,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
}

/// A job row, for inspection (tests, dashboards).
#[derive(Debug, Clone)]
pub struct JobRecord {
    /// Row id.
    pub id: i64,
    /// The guild it belongs to.
    pub guild_id: u64,
    /// Which handler runs it.
    pub kind: String,
    /// The handler's input.
    pub payload: serde_json::Value,
    /// Key unique among the guild's pending jobs.
    pub dedupe_key: Option<String>,
    /// When it is (or was) due, unix ms.
    pub run_at: i64,
    /// Where it is in its life.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed before it is marked failed.
    pub max_attempts: u32,
    /// The worker holding (or last holding) its lease.
    pub lease_owner: Option<String>,
    /// The last attempt's failure message.
    pub last_error: Option<String>,
    /// When it reached `done`, `failed` or `cancelled`, unix ms.
    pub finished_at: Option<i64>,
}

/// Handle for scheduling and cancelling jobs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Jobs {
    store: Store,
}

const COLUMNS: &str = "id, guild_id, kind, payload, dedupe_key, run_at, state, attempts, \
                       max_attempts, lease_owner, last_error, finished_at";

fn payload_of(id: i64, text: &str) -> Result<serde_json::Value, JobError> {
    serde_json::from_str(text).map_err(|source| JobError::Payload { id, source })
}

fn record_from_row(row: &AnyRow) -> Result<JobRecord, JobError> {
    let id: i64 = row.try_get("id")?;
    let payload: String = row.try_get("payload")?;
    let state: String = row.try_get("state")?;
    Ok(JobRecord {
        id,
        guild_id: row.try_get::<i64, _>("guild_id")? as u64,
        kind: row.try_get("kind")?,
        payload: payload_of(id, &payload)?,
        dedupe_key: row.try_get("dedupe_key")?,
        run_at: row.try_get("run_at")?,
        state: JobState::parse(&state)
            .ok_or_else(|| JobError::Corrupt { id, reason: format!("unknown state {state:?}") })?,
        attempts: row.try_get::<i64, _>("attempts")?.max(0) as u32,
        max_attempts: row.try_get::<i64, _>("max_attempts")?.max(0) as u32,
        lease_owner: row.try_get("lease_owner")?,
        last_error: row.try_get("last_error")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl Jobs {
    /// The jobs table of `store` ([`Jobs::migrate`] creates it).
    pub fn new(store: Store) -> Jobs {
        Jobs { store }
    }

    /// The underlying store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates the table (idempotent) and registers it for guild purges.
    pub async fn migrate(&self) -> Result<(), JobError> {
        self.store.migrate_schema(&SCHEMA).await?;
        Ok(())
    }

    /// Schedules `kind` for `guild_id` at `run_at` (unix ms). With a `dedupe_key`, a pending job
    /// of this guild with the same key is replaced (rescheduled) instead of adding another one.
    /// Returns the job id.
    pub async fn schedule(
        &self,
        guild_id: u64,
        kind: &str,
        payload: &serde_json::Value,
        run_at: i64,
        dedupe_key: Option<&str>,
    ) -> Result<i64, JobError> {
        self.schedule_with(guild_id, kind, payload, run_at, dedupe_key, DEFAULT_MAX_ATTEMPTS).await
    }

    /// [`Jobs::schedule`] with an explicit number of attempts.
    pub async fn schedule_with(
        &self,
        guild_id: u64,
        kind: &str,
        payload: &serde_json::Value,
        run_at: i64,
        dedupe_key: Option<&str>,
        max_attempts: u32,
    ) -> Result<i64, JobError> {
        if kind.is_empty() || kind.len() > 64 {
            return Err(JobError::Invalid("kind must be 1..=64 bytes".into()));
        }
        if max_attempts == 0 {
            return Err(JobError::Invalid("max_attempts must be at least 1".into()));
        }
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO beacon_jobs (guild_id, kind, payload, dedupe_key, run_at, state, attempts, \
             max_attempts, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $7) \
             ON CONFLICT (guild_id, dedupe_key) WHERE state = 'pending' AND dedupe_key IS NOT NULL \
             DO UPDATE SET kind = excluded.kind, payload = excluded.payload, run_at = excluded.run_at, \
             attempts = 0, max_attempts = excluded.max_attempts, last_error = NULL, \
             updated_at = excluded.updated_at RETURNING id",
        )
        .bind(guild_id as i64)
        .bind(kind)
        .bind(payload.to_string())
        .bind(dedupe_key)
        .bind(run_at)
        .bind(i64::from(max_attempts))
        .bind(now)
        .fetch_one(self.store.pool())
        .await?;
        Ok(id)
    }

    /// Cancels the pending job of this guild with `dedupe_key`; `true` if there was one. A job
    /// already running is not interrupted.
    pub async fn cancel(&self, guild_id: u64, dedupe_key: &str) -> Result<bool, JobError> {
        let n = sqlx::query(
            "UPDATE beacon_jobs SET state = 'cancelled', updated_at = $3, finished_at = $3 \
             WHERE guild_id = $1 AND dedupe_key = $2 AND state = 'pending'",
        )
        .bind(guild_id as i64)
        .bind(dedupe_key)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Cancels every pending job of this guild whose key starts with `prefix`; returns how many.
    pub async fn cancel_prefix(&self, guild_id: u64, prefix: &str) -> Result<u64, JobError> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        let n = sqlx::query(
            "UPDATE beacon_jobs SET state = 'cancelled', updated_at = $3, finished_at = $3 \
             WHERE guild_id = $1 AND dedupe_key LIKE $2 AND state = 'pending'",
        )
        .bind(guild_id as i64)
        .bind(pattern)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok(n)
    }

    /// The job with row id `id`, if it exists.
    pub async fn get(&self, id: i64) -> Result<Option<JobRecord>, JobError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM beacon_jobs WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// The latest job of this guild with `dedupe_key`, whatever its state.
    pub async fn by_key(&self, guild_id: u64, dedupe_key: &str) -> Result<Option<JobRecord>, JobError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM beacon_jobs WHERE guild_id = $1 AND dedupe_key = $2 \
             ORDER BY id DESC LIMIT 1"
        )))
        .bind(guild_id as i64)
        .bind(dedupe_key)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Jobs of one guild, newest first (at most `limit`).
    pub async fn list(&self, guild_id: u64, limit: i64) -> Result<Vec<JobRecord>, JobError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM beacon_jobs WHERE guild_id = $1 ORDER BY id DESC LIMIT $2"
        )))
        .bind(guild_id as i64)
        .bind(limit.max(0))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Deletes finished (done, failed, cancelled) jobs that finished before `before_ms`.
    pub async fn prune_finished(&self, before_ms: i64) -> Result<u64, JobError> {
        Ok(sqlx::query(
            "DELETE FROM beacon_jobs WHERE state IN ('done', 'failed', 'cancelled') \
             AND finished_at < $1",
        )
        .bind(before_ms)
        .execute(self.store.pool())
        .await?
        .rows_affected())
    }

    /// How many jobs are due at `now_ms` and not running: pending ones whose time has come and
    /// running ones whose lease expired (a crashed worker's). What `/metrics` shows as backlog.
    pub async fn due_count(&self, now_ms: i64) -> Result<i64, JobError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM beacon_jobs \
             WHERE (state = 'pending' AND run_at <= $1) OR (state = 'running' AND lease_until < $1)",
        )
        .bind(now_ms)
        .fetch_one(self.store.pool())
        .await?;
        Ok(n)
    }

    /// Atomically claims up to `limit` due jobs of the given kinds for `owner` until
    /// `lease_until`: pending jobs whose time has come, and running jobs whose lease expired
    /// (their worker died).
    pub(crate) async fn claim(
        &self,
        owner: &str,
        kinds: &[String],
        limit: usize,
        lease_until: i64,
    ) -> Result<Vec<Job>, JobError> {
        if kinds.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let kind_params: Vec<String> = (0..kinds.len()).map(|i| format!("${}", i + 5)).collect();
        let due = "((state = 'pending' AND run_at <= $3) OR (state = 'running' AND lease_until < $3))";
        let kinds_sql = kind_params.join(", ");
        let returning = "RETURNING beacon_jobs.id, beacon_jobs.guild_id, beacon_jobs.kind, \
                         beacon_jobs.payload, beacon_jobs.attempts, beacon_jobs.run_at, \
                         beacon_jobs.dedupe_key";
        let set = "state = 'running', lease_owner = $1, lease_until = $2, \
                   attempts = beacon_jobs.attempts + 1, updated_at = $3";
        let sql = match self.store.backend() {
            // A CTE is evaluated once: with `id IN (subquery … LIMIT)` PostgreSQL may re-run
            // the subquery and claim more rows than asked. SKIP LOCKED lets workers pass each
            // other; the outer re-check of `due` rejects a row another worker claimed meanwhile.
            Backend::Postgres => format!(
                "WITH picked AS (SELECT id FROM beacon_jobs WHERE {due} AND kind IN ({kinds_sql}) \
                 ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
                 UPDATE beacon_jobs SET {set} FROM picked \
                 WHERE beacon_jobs.id = picked.id AND {due_q} {returning}",
                due_q = "((beacon_jobs.state = 'pending' AND beacon_jobs.run_at <= $3) OR \
                         (beacon_jobs.state = 'running' AND beacon_jobs.lease_until < $3))",
            ),
            // SQLite runs one writer at a time, so the statement is atomic as it stands.
            Backend::Sqlite => format!(
                "UPDATE beacon_jobs SET {set} WHERE id IN (SELECT id FROM beacon_jobs WHERE {due} \
                 AND kind IN ({kinds_sql}) ORDER BY run_at, id LIMIT $4) AND {due} {returning}"
            ),
        };
        let mut query = sqlx::query(AssertSqlSafe(sql)).bind(owner).bind(lease_until).bind(now_ms()).bind(limit as i64);
        for kind in kinds {
            query = query.bind(kind.as_str());
        }
        let rows = query.fetch_all(self.store.pool()).await?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get("id")?;
                let payload: String = row.try_get("payload")?;
                Ok(Job {
                    id,
                    guild_id: row.try_get::<i64, _>("guild_id")? as u64,
                    kind: row.try_get("kind")?,
                    payload: payload_of(id, &payload)?,
                    attempt: row.try_get::<i64, _>("attempts")?.max(0) as u32,
                    run_at: row.try_get("run_at")?,
                    dedupe_key: row.try_get("dedupe_key")?,
                })
            })
            .collect()
    }

    /// Extends the lease; `false` when `owner` no longer holds it.
    pub(crate) async fn heartbeat(&self, id: i64, owner: &str, lease_until: i64) -> Result<bool, JobError> {
        let n = sqlx::query(
            "UPDATE beacon_jobs SET lease_until = $3, updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(lease_until)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Marks the job done; `false` when `owner` had lost the lease (another worker owns it).
    pub(crate) async fn complete(&self, id: i64, owner: &str) -> Result<bool, JobError> {
        let now = now_ms();
        let n = sqlx::query(
            "UPDATE beacon_jobs SET state = 'done', lease_until = NULL, finished_at = $3, \
             updated_at = $3, last_error = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .execute(self.store.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Records a failed attempt: back to pending at `retry_at`, or failed for good when `retry_at`
    /// is `None` or the job is out of attempts.
    pub(crate) async fn fail(
        &self,
        id: i64,
        owner: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<bool, JobError> {
        let now = now_ms();
        let error: String = error.chars().take(2000).collect();
        let n = match retry_at {
            Some(at) => {
                sqlx::query(
                    "UPDATE beacon_jobs SET \
                     state = CASE WHEN attempts < max_attempts THEN 'pending' ELSE 'failed' END, \
                     finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE $4 END, \
                     run_at = $5, lease_owner = NULL, lease_until = NULL, last_error = $3, updated_at = $4 \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                )
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(now)
                .bind(at)
                .execute(self.store.pool())
                .await?
            }
            None => {
                sqlx::query(
                    "UPDATE beacon_jobs SET state = 'failed', finished_at = $4, lease_owner = NULL, \
                     lease_until = NULL, last_error = $3, updated_at = $4 \
                     WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                )
                .bind(id)
                .bind(owner)
                .bind(error)
                .bind(now)
                .execute(self.store.pool())
                .await?
            }
        }
        .rows_affected();
        Ok(n == 1)
    }
}
