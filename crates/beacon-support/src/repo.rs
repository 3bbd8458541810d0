//! The support module's tables: one row per answer (ids, lengths, outcome, feedback — content only
//! when the guild opted in) and the threads the bot opened for questions.

use beacon_store::{GuildStore, Schema, StoreError};
use sqlx::Row;

/// The support module's tables.
pub const SCHEMA: Schema = Schema {
    name: "support",
    migrations: &[
        beacon_store::migration!(1, "answers and support threads", "0001_support.sql"),
        beacon_store::migration!(2, "questions abstained on or voted down", "0002_support_gaps.sql"),
        beacon_store::migration!(
            3,
            "what retrieval returned, and the question a late thumbs-down records",
            "0003_retrieved_and_late_feedback.sql"
        ),
    ],
    guild_tables: &["support_answers", "support_gaps", "support_threads"],
};

/// One answer, as recorded.
#[derive(Debug, Clone, Default)]
pub struct AnswerRecord {
    /// Where the question was asked.
    pub channel_id: u64,
    /// Who asked.
    pub user_id: u64,
    /// How it arrived (`ask`, `channel`, `mention`, `thread`).
    pub trigger: &'static str,
    /// How it ended (`answered`, `abstained`, …).
    pub outcome: &'static str,
    /// `extractive` or `llm`.
    pub mode: &'static str,
    /// Served from the answer cache.
    pub cache_hit: bool,
    /// Retrieval confidence of the best passage.
    pub confidence: f32,
    /// Knowledge-base chunk ids the answer drew on.
    pub sources: Vec<i64>,
    /// Knowledge-base chunk ids retrieval returned for the question (drawn on or not).
    pub retrieved: Vec<i64>,
    /// The question, PII-redacted, kept (for `support.gaps_retention`) so that a 👎 given after
    /// the answer left the cache still records the gap; `None` where nothing can be voted on.
    pub gap_question: Option<String>,
    /// Length of the question, in characters.
    pub question_chars: usize,
    /// Length of the answer, in characters.
    pub answer_chars: usize,
    /// The language Beacon answered in (its own words; quotes stay as written).
    pub lang: crate::i18n::Lang,
    /// Prompt and generated tokens of the LLM call behind the answer (0 without one).
    pub tokens_in: u64,
    /// Generated tokens of the LLM call (0 without one).
    pub tokens_out: u64,
    /// Time from the question to the answer, in milliseconds.
    pub latency_ms: u64,
    /// Only when the guild opted in to content in the audit log.
    pub question: Option<String>,
    /// Only when the guild opted in to content in the audit log.
    pub answer: Option<String>,
}

/// Guild-scoped access to the support tables.
pub struct SupportRepo {
    guild: GuildStore,
}

impl SupportRepo {
    /// Access to `guild`'s support rows.
    pub fn new(guild: GuildStore) -> SupportRepo {
        SupportRepo { guild }
    }

    /// Records an answer and returns its id.
    pub async fn record(&self, a: &AnswerRecord, now_ms: i64) -> Result<i64, StoreError> {
        let sources = serde_json::to_string(&a.sources).unwrap_or_else(|_| "[]".into());
        let retrieved = serde_json::to_string(&a.retrieved).unwrap_or_else(|_| "[]".into());
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO support_answers (guild_id, channel_id, user_id, trigger_kind, outcome, mode, cache_hit, confidence, \
             sources, question_chars, answer_chars, tokens_in, tokens_out, latency_ms, question, answer, created_at, \
             retrieved, gap_question) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) RETURNING id",
        )
        .bind(self.guild.sql_id())
        .bind(a.channel_id as i64)
        .bind(a.user_id as i64)
        .bind(a.trigger)
        .bind(a.outcome)
        .bind(a.mode)
        .bind(i64::from(a.cache_hit))
        .bind(f64::from(a.confidence))
        .bind(sources)
        .bind(a.question_chars as i64)
        .bind(a.answer_chars as i64)
        .bind(i64::try_from(a.tokens_in).unwrap_or(i64::MAX))
        .bind(i64::try_from(a.tokens_out).unwrap_or(i64::MAX))
        .bind(a.latency_ms as i64)
        .bind(a.question.clone())
        .bind(a.answer.clone())
        .bind(now_ms)
        .bind(retrieved)
        .bind(a.gap_question.clone())
        .fetch_one(self.guild.store().pool())
        .await?;
        Ok(id)
    }

    /// Links an answer to the Discord message that carried it.
    pub async fn set_message(&self, answer_id: i64, message_id: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE support_answers SET message_id = $1 WHERE guild_id = $2 AND id = $3")
            .bind(message_id as i64)
            .bind(self.guild.sql_id())
            .bind(answer_id)
            .execute(self.guild.store().pool())
            .await?;
        Ok(())
    }

    /// Records 👍 (+1) or 👎 (-1); `false` when there is no such answer in this guild.
    pub async fn feedback(&self, answer_id: i64, value: i64, user_id: u64) -> Result<bool, StoreError> {
        let n =
            sqlx::query("UPDATE support_answers SET feedback = $1, feedback_by = $2 WHERE guild_id = $3 AND id = $4")
                .bind(value)
                .bind(user_id as i64)
                .bind(self.guild.sql_id())
                .bind(answer_id)
                .execute(self.guild.store().pool())
                .await?
                .rows_affected();
        Ok(n > 0)
    }

    /// The answer posted as `message_id`, if any.
    pub async fn answer_for_message(&self, message_id: u64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM support_answers WHERE guild_id = $1 AND message_id = $2")
            .bind(self.guild.sql_id())
            .bind(message_id as i64)
            .fetch_optional(self.guild.store().pool())
            .await?)
    }

    /// Feedback totals: (answers, 👍, 👎, abstentions).
    pub async fn stats(&self, since_ms: i64) -> Result<(i64, i64, i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, \
             COALESCE(SUM(CASE WHEN feedback > 0 THEN 1 ELSE 0 END), 0) AS up, \
             COALESCE(SUM(CASE WHEN feedback < 0 THEN 1 ELSE 0 END), 0) AS down, \
             COALESCE(SUM(CASE WHEN outcome = 'abstained' THEN 1 ELSE 0 END), 0) AS abstained \
             FROM support_answers WHERE guild_id = $1 AND created_at >= $2",
        )
        .bind(self.guild.sql_id())
        .bind(since_ms)
        .fetch_one(self.guild.store().pool())
        .await?;
        Ok((row.try_get("n")?, row.try_get("up")?, row.try_get("down")?, row.try_get("abstained")?))
    }

    /// Every answer recorded since `since_ms`: its outcome, feedback and the chunks it drew on.
    pub async fn outcomes(&self, since_ms: i64) -> Result<Vec<crate::quality::AnswerOutcome>, StoreError> {
        let rows = sqlx::query(
            "SELECT outcome, feedback, sources, retrieved FROM support_answers WHERE guild_id = $1 AND created_at >= $2 \
             ORDER BY id",
        )
        .bind(self.guild.sql_id())
        .bind(since_ms)
        .fetch_all(self.guild.store().pool())
        .await?;
        rows.iter()
            .map(|r| {
                let sources: String = r.try_get("sources")?;
                let retrieved: String = r.try_get("retrieved")?;
                Ok(crate::quality::AnswerOutcome {
                    outcome: r.try_get("outcome")?,
                    feedback: r.try_get("feedback")?,
                    // A row whose list does not read drew on nothing the report can name.
                    sources: serde_json::from_str(&sources).unwrap_or_default(),
                    retrieved: serde_json::from_str(&retrieved).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The PII-redacted question of answer `answer_id`, while it is kept (see
    /// [`AnswerRecord::gap_question`]).
    pub async fn gap_question(&self, answer_id: i64) -> Result<Option<String>, StoreError> {
        let question: Option<Option<String>> =
            sqlx::query_scalar("SELECT gap_question FROM support_answers WHERE guild_id = $1 AND id = $2")
                .bind(self.guild.sql_id())
                .bind(answer_id)
                .fetch_optional(self.guild.store().pool())
                .await?;
        Ok(question.flatten().filter(|q| !q.is_empty()))
    }

    /// Where answer `answer_id` was posted: (channel, message), the message once known.
    pub async fn answer_place(&self, answer_id: i64) -> Result<Option<(u64, Option<u64>)>, StoreError> {
        let row = sqlx::query("SELECT channel_id, message_id FROM support_answers WHERE guild_id = $1 AND id = $2")
            .bind(self.guild.sql_id())
            .bind(answer_id)
            .fetch_optional(self.guild.store().pool())
            .await?;
        row.map(|r| {
            Ok((
                r.try_get::<i64, _>("channel_id")? as u64,
                r.try_get::<Option<i64>, _>("message_id")?.map(|m| m as u64),
            ))
        })
        .transpose()
    }

    /// Records a gap: answer `answer_id`'s question (already PII-redacted) was abstained on
    /// (`kind` = `abstained`) or voted down (`down`). Gaps recorded before `forget_before_ms` are
    /// deleted (retention). `false` when this answer's gap of this kind was already recorded.
    pub async fn add_gap(
        &self,
        answer_id: i64,
        kind: &str,
        question: &str,
        now_ms: i64,
        forget_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let pool = self.guild.store().pool();
        sqlx::query("DELETE FROM support_gaps WHERE guild_id = $1 AND created_at < $2")
            .bind(self.guild.sql_id())
            .bind(forget_before_ms)
            .execute(pool)
            .await?;
        let n = sqlx::query(
            "INSERT INTO support_gaps (guild_id, answer_id, kind, normalized, question, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guild_id, answer_id, kind) DO NOTHING",
        )
        .bind(self.guild.sql_id())
        .bind(answer_id)
        .bind(kind)
        .bind(crate::quality::normalize(question))
        .bind(question)
        .bind(now_ms)
        .execute(pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// The gaps recorded since `since_ms`, newest first (at most `limit`).
    pub async fn gaps(&self, since_ms: i64, limit: i64) -> Result<Vec<crate::quality::GapEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, normalized, question FROM support_gaps WHERE guild_id = $1 AND created_at >= $2 \
             ORDER BY id DESC LIMIT $3",
        )
        .bind(self.guild.sql_id())
        .bind(since_ms)
        .bind(limit)
        .fetch_all(self.guild.store().pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::quality::GapEvent {
                    down: r.try_get::<String, _>("kind")? == "down",
                    normalized: r.try_get("normalized")?,
                    question: r.try_get("question")?,
                })
            })
            .collect()
    }

    /// Remembers a thread opened for `user_id`'s question.
    pub async fn add_thread(&self, thread_id: u64, user_id: u64, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO support_threads (guild_id, thread_id, user_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (guild_id, thread_id) DO NOTHING",
        )
        .bind(self.guild.sql_id())
        .bind(thread_id as i64)
        .bind(user_id as i64)
        .bind(now_ms)
        .execute(self.guild.store().pool())
        .await?;
        // Every process keeps the guild's thread ids in memory (`thread_ids`).
        self.guild.mark_changed().await
    }

    /// Every thread Beacon opened for a question in this guild, with the member who asked.
    pub async fn thread_owners(&self) -> Result<std::collections::HashMap<u64, u64>, StoreError> {
        let rows = sqlx::query("SELECT thread_id, user_id FROM support_threads WHERE guild_id = $1")
            .bind(self.guild.sql_id())
            .fetch_all(self.guild.store().pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<i64, _>("thread_id")? as u64, r.try_get::<i64, _>("user_id")? as u64)))
            .collect()
    }
}
