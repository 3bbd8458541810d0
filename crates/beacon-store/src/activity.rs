//! What happens in a guild, in figures: one `command_usage` row per command run and one
//! `handler_errors` row per handler failure (core schema, expired by the framework's retention
//! kinds `core.usage_retention` and `core.errors_retention`).

use sqlx::Row;

use crate::error::StoreError;
use crate::guild::GuildStore;

/// How a command run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The handler finished.
    Ok,
    /// The member was refused, and told why (bad input, missing access, a disabled module).
    Refused,
    /// The handler failed; an error row says why.
    Failed,
}

impl Outcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

/// How often one command ran with one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandCount {
    /// The command's name.
    pub command: String,
    /// `ok`, `refused` or `failed`.
    pub outcome: String,
    /// Runs.
    pub count: i64,
}

/// One handler failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    /// The module whose handler failed.
    pub module: String,
    /// The reference the member was shown.
    pub reference: u64,
    /// The error, personal data redacted.
    pub message: String,
    /// When, unix ms.
    pub at: i64,
}

/// Longest error message kept, in characters.
const MAX_MESSAGE: usize = 500;

impl GuildStore {
    /// Records one run of `command` that ended with `outcome` at `at` (unix ms).
    pub async fn record_command(&self, command: &str, outcome: Outcome, at: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO command_usage (guild_id, command, outcome, at) VALUES ($1, $2, $3, $4)")
            .bind(self.sql_id())
            .bind(command)
            .bind(outcome.as_str())
            .bind(at)
            .execute(self.store().pool())
            .await?;
        Ok(())
    }

    /// Records a failure of `module`'s handler; `message` must already be redacted.
    pub async fn record_error(&self, module: &str, reference: u64, message: &str, at: i64) -> Result<(), StoreError> {
        let message: String = message.chars().take(MAX_MESSAGE).collect();
        sqlx::query(
            "INSERT INTO handler_errors (guild_id, module, reference, message, at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(self.sql_id())
        .bind(module)
        .bind(reference as i64)
        .bind(message)
        .bind(at)
        .execute(self.store().pool())
        .await?;
        Ok(())
    }

    /// Command runs since `since` (unix ms), by command and outcome, most used first.
    pub async fn command_counts(&self, since: i64) -> Result<Vec<CommandCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT command, outcome, COUNT(*) AS n FROM command_usage WHERE guild_id = $1 AND at >= $2 \
             GROUP BY command, outcome ORDER BY n DESC, command, outcome",
        )
        .bind(self.sql_id())
        .bind(since)
        .fetch_all(self.store().pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CommandCount {
                    command: r.try_get("command")?,
                    outcome: r.try_get("outcome")?,
                    count: r.try_get("n")?,
                })
            })
            .collect()
    }

    /// The latest `limit` handler failures, newest first.
    pub async fn recent_errors(&self, limit: i64) -> Result<Vec<ErrorRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT module, reference, message, at FROM handler_errors WHERE guild_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(self.sql_id())
        .bind(limit)
        .fetch_all(self.store().pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ErrorRecord {
                    module: r.try_get("module")?,
                    reference: r.try_get::<i64, _>("reference")? as u64,
                    message: r.try_get("message")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}
