//! Durable timers for Beacon: jobs stored in the database (SQLite or PostgreSQL) and run by
//! workers that hold a lease on each job while it runs.
//!
//! - A job survives restarts: it is a row until it is done.
//! - Several workers can share one database: a job is claimed atomically (one `UPDATE …
//!   RETURNING`, with `FOR UPDATE SKIP LOCKED` on PostgreSQL), its lease is heartbeated while the
//!   handler runs, and completion is fenced by the lease token, so a finished job never runs again.
//! - A worker that dies mid-job (kill -9) stops heartbeating; once its lease expires another worker
//!   claims the job and runs it again. Handlers must therefore tolerate a re-run of an attempt that
//!   was interrupted (the ticket and moderation handlers re-check state before acting).
//! - Failures are retried with exponential backoff up to the job's `max_attempts`.
//!
//! ```no_run
//! # async fn demo(store: beacon_store::Store) -> Result<(), beacon_jobs::JobError> {
//! use std::sync::Arc;
//! use beacon_jobs::{Job, JobHandler, Jobs, Failure, Runner, RunnerOptions};
//!
//! struct Remind;
//! #[async_trait::async_trait]
//! impl JobHandler for Remind {
//!     async fn run(&self, job: &Job) -> Result<(), Failure> {
//!         println!("reminding guild {} of {}", job.guild_id, job.payload);
//!         Ok(())
//!     }
//! }
//!
//! let jobs = Jobs::new(store.clone());
//! jobs.migrate().await?;
//! let in_an_hour = beacon_store::now_ms() + 3_600_000;
//! jobs.schedule(42, "remind", &serde_json::json!({"text": "standup"}), in_an_hour, Some("remind:7")).await?;
//!
//! let mut runner = Runner::new(store, RunnerOptions::default());
//! runner.register("remind", Arc::new(Remind));
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let handle = runner.spawn(shutdown.clone());
//! // … later
//! shutdown.cancel();
//! let _ = handle.await;
//! # Ok(())
//! # }
//! ```

mod runner;
mod store;

pub use runner::{Runner, RunnerOptions};
pub use store::{JobRecord, JobState, Jobs, SCHEMA};

use async_trait::async_trait;

/// Errors of the job facility.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] beacon_store::StoreError),
    /// A stored job row holds a value this version does not understand.
    #[error("job {id} holds invalid data: {reason}")]
    Corrupt {
        /// The job.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored job's payload is not JSON.
    #[error("job {id} holds a payload that is not JSON: {source}")]
    Payload {
        /// The job.
        id: i64,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// A job was rejected before it was stored (bad kind, no attempts allowed).
    #[error("invalid job: {0}")]
    Invalid(String),
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::Store(beacon_store::StoreError::Database(e))
    }
}

/// A claimed job, as a handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's row id.
    pub id: i64,
    /// The guild it belongs to.
    pub guild_id: u64,
    /// Which handler runs it (see [`Runner::register`]).
    pub kind: String,
    /// The data the scheduler gave it.
    pub payload: serde_json::Value,
    /// 1 for the first run, 2 for the first retry (or the re-run after a crashed worker), …
    pub attempt: u32,
    /// When the job was due, unix ms.
    pub run_at: i64,
    /// Key unique among the guild's pending jobs: scheduling it again replaces the pending one.
    pub dedupe_key: Option<String>,
}

/// Why a handler did not finish its job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong; stored as the job's last error.
    pub message: String,
    /// Whether another attempt may succeed (a timeout, a 5xx) or not (bad payload).
    pub retry: bool,
}

impl Failure {
    /// A failure worth retrying later.
    pub fn retry(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), retry: true }
    }

    /// A failure that another attempt would repeat: the job is marked failed.
    pub fn permanent(message: impl Into<String>) -> Failure {
        Failure { message: message.into(), retry: false }
    }
}

/// Runs the jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Does the job's work; `Err` schedules a retry or marks the job failed (see [`Failure`]).
    async fn run(&self, job: &Job) -> Result<(), Failure>;
}
