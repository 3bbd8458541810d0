//! Tickets as stored: the `tickets` and `ticket_events` tables and their queries, always scoped
//! to one guild through a [`GuildStore`].

use beacon_store::{GuildStore, Schema, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// The ticket desk's tables.
pub(crate) const SCHEMA: Schema = Schema {
    name: "tickets",
    migrations: &[
        beacon_store::migration!(1, "tickets", "0001_tickets.sql"),
        beacon_store::migration!(2, "ticket status history", "0002_ticket_events.sql"),
        beacon_store::migration!(3, "members blocked from opening tickets", "0003_ticket_blocks.sql"),
        beacon_store::migration!(4, "ticket panels and form answers", "0004_ticket_panels.sql"),
        beacon_store::migration!(5, "resolved tickets kept as knowledge", "0005_ticket_knowledge.sql"),
        beacon_store::migration!(6, "retired transcript expiry jobs removed", "0006_stale_transcript_jobs.sql"),
    ],
    guild_tables: &["ticket_blocks", "ticket_events", "ticket_knowledge", "ticket_panels", "tickets"],
};

/// Where a ticket is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// New; no staff member has taken it.
    Open,
    /// A staff member took it.
    Claimed,
    /// Waiting for the member to answer (SLA clocks paused).
    WaitingForUser,
    /// Escalated to the escalation roles.
    Escalated,
    /// Closed (a transcript was stored); it can be reopened.
    Closed,
}

impl Status {
    /// Every status, in workflow order.
    pub const ALL: [Status; 5] =
        [Status::Open, Status::Claimed, Status::WaitingForUser, Status::Escalated, Status::Closed];

    /// The name stored in the database and used in custom ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Claimed => "claimed",
            Status::WaitingForUser => "waiting_for_user",
            Status::Escalated => "escalated",
            Status::Closed => "closed",
        }
    }

    /// The status named `s` (see [`Status::as_str`]).
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The coloured chip shown on the ticket embed.
    pub fn chip(self) -> &'static str {
        match self {
            Status::Open => "🟢 Open",
            Status::Claimed => "🔵 Claimed",
            Status::WaitingForUser => "🟡 Waiting for user",
            Status::Escalated => "🔴 Escalated",
            Status::Closed => "⚫ Closed",
        }
    }

    /// The embed colour of the status (RGB).
    pub fn color(self) -> u32 {
        match self {
            Status::Open => 0x22C55E,
            Status::Claimed => 0x3B82F6,
            Status::WaitingForUser => 0xEAB308,
            Status::Escalated => 0xEF4444,
            Status::Closed => 0x6B7280,
        }
    }
}

/// One ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    /// The guild of the ticket.
    pub guild_id: u64,
    /// Per-guild number, shown as `#0001`.
    pub number: i64,
    /// The member who opened it.
    pub opener_id: u64,
    /// The private thread or channel.
    pub channel_id: Option<u64>,
    /// The ticket's embed message (with the status buttons).
    pub message_id: Option<u64>,
    /// What the member asked about.
    pub topic: String,
    /// Where it is in its workflow.
    pub status: Status,
    /// The staff member who claimed it.
    pub claimed_by: Option<u64>,
    /// Opened, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
    /// Who made the last change (0 = Beacon itself).
    pub updated_by: u64,
    /// Last message in the ticket, unix ms (for auto-close).
    pub last_activity_at: i64,
    /// First staff answer, unix ms.
    pub first_response_at: Option<i64>,
    /// The staff member who answered first.
    pub first_responder_id: Option<u64>,
    /// Closed, unix ms (`None` while open or after a reopen).
    pub closed_at: Option<i64>,
    /// Who closed it (0 = Beacon itself).
    pub closed_by: Option<u64>,
    /// SLA clock time spent waiting for the user, before the current pause.
    pub paused_ms: i64,
    /// Start of the current pause (status `waiting_for_user`).
    pub paused_since: Option<i64>,
    /// Whether the first-response SLA was missed.
    pub first_response_breached: bool,
    /// Whether the resolution SLA was missed.
    pub resolution_breached: bool,
    /// Object key of the stored transcript.
    pub transcript_key: Option<String>,
    /// The member's rating after close (1–5).
    pub rating: Option<i64>,
    /// The member's comment after close.
    pub feedback: Option<String>,
    /// How often it was reopened.
    pub reopened_count: i64,
    /// The panel it was opened from (`None`: the default panel, a command or the hand-off).
    pub panel_id: Option<i64>,
    /// The member's answers to the panel's form questions.
    pub answers: Vec<Answer>,
}

/// One answer to a panel's form question, stored with the ticket (with the question as it was
/// asked, so editing or deleting the panel later changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// The question's label.
    pub question: String,
    /// What the member wrote.
    pub answer: String,
}

/// A resolved ticket kept as knowledge: its question and staff's answers, PII-redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knowledge {
    /// The ticket's number.
    pub number: i64,
    /// What the member asked (the ticket's topic).
    pub question: String,
    /// What staff answered.
    pub answer: String,
}

/// A ticket panel: its own destination, staff role and form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panel {
    /// Id in the button's custom id.
    pub id: i64,
    /// Unique name in the guild (lowercase letters, digits, `-`, `_`).
    pub name: String,
    /// Title of the panel message and of its form.
    pub title: String,
    /// Text of the panel message.
    pub description: String,
    /// Parent channel of the private threads (thread mode).
    pub channel_id: Option<u64>,
    /// Category of the ticket channels (channel mode).
    pub category_id: Option<u64>,
    /// The staff of its tickets (`None`: the guild's staff roles).
    pub staff_role_id: Option<u64>,
    /// The form's questions (labels), at most 5.
    pub questions: Vec<String>,
}

impl Ticket {
    /// `#0001`.
    pub fn label(&self) -> String {
        format!("#{:04}", self.number)
    }

    /// SLA time elapsed at `now`: wall time since opening minus time spent waiting for the user.
    pub fn sla_elapsed(&self, now: i64) -> i64 {
        let current_pause = self.paused_since.map_or(0, |p| (now - p).max(0));
        (now - self.created_at - self.paused_ms - current_pause).max(0)
    }
}

const COLUMNS: &str = "guild_id, number, opener_id, channel_id, message_id, topic, status, \
    claimed_by, created_at, updated_at, updated_by, last_activity_at, first_response_at, \
    first_responder_id, closed_at, closed_by, paused_ms, paused_since, first_response_breached, \
    resolution_breached, transcript_key, rating, feedback, reopened_count, panel_id, answers";

const PANEL_COLUMNS: &str = "id, name, title, description, channel_id, category_id, staff_role_id, questions";

fn panel_from_row(row: &AnyRow) -> Result<Panel, StoreError> {
    let questions: String = row.try_get("questions")?;
    Ok(Panel {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        channel_id: opt_id(row, "channel_id")?,
        category_id: opt_id(row, "category_id")?,
        staff_role_id: opt_id(row, "staff_role_id")?,
        questions: serde_json::from_str(&questions)
            .map_err(|e| StoreError::Corrupt(format!("panel questions: {e}")))?,
    })
}

fn questions_json(questions: &[String]) -> String {
    serde_json::Value::from(questions.to_vec()).to_string()
}

fn opt_id(row: &AnyRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v as u64))
}

fn from_row(row: &AnyRow) -> Result<Ticket, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Ticket {
        guild_id: row.try_get::<i64, _>("guild_id")? as u64,
        number: row.try_get("number")?,
        opener_id: row.try_get::<i64, _>("opener_id")? as u64,
        channel_id: opt_id(row, "channel_id")?,
        message_id: opt_id(row, "message_id")?,
        topic: row.try_get("topic")?,
        status: Status::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown ticket status {status:?}")))?,
        claimed_by: opt_id(row, "claimed_by")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get::<i64, _>("updated_by")? as u64,
        last_activity_at: row.try_get("last_activity_at")?,
        first_response_at: row.try_get("first_response_at")?,
        first_responder_id: opt_id(row, "first_responder_id")?,
        closed_at: row.try_get("closed_at")?,
        closed_by: opt_id(row, "closed_by")?,
        paused_ms: row.try_get("paused_ms")?,
        paused_since: row.try_get("paused_since")?,
        first_response_breached: row.try_get::<i64, _>("first_response_breached")? != 0,
        resolution_breached: row.try_get::<i64, _>("resolution_breached")? != 0,
        transcript_key: row.try_get("transcript_key")?,
        rating: row.try_get("rating")?,
        feedback: row.try_get("feedback")?,
        reopened_count: row.try_get("reopened_count")?,
        panel_id: row.try_get("panel_id")?,
        answers: match row.try_get::<Option<String>, _>("answers")? {
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("ticket answers: {e}")))?
            }
            None => Vec::new(),
        },
    })
}

/// Aggregates for `/ticket stats`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Tickets opened in the period.
    pub opened: i64,
    /// Tickets closed in the period.
    pub closed: i64,
    /// Claims made in the period.
    pub claims: i64,
    /// Tickets with a first response counted in the average.
    pub responded: i64,
    /// Average time to the first staff answer.
    pub avg_first_response_ms: Option<i64>,
    /// Tickets counted in the resolution average.
    pub resolved: i64,
    /// Average time from opening to closing.
    pub avg_resolution_ms: Option<i64>,
    /// Average rating of the closed tickets that have one.
    pub avg_rating: Option<f64>,
}

/// The tickets of one guild.
#[derive(Clone)]
pub struct Repo {
    guild: GuildStore,
}

impl Repo {
    pub fn new(guild: GuildStore) -> Repo {
        Repo { guild }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.guild.store().pool()
    }

    fn gid(&self) -> i64 {
        self.guild.sql_id()
    }

    /// Creates a ticket with the next number of this guild (from `panel`, with the member's
    /// `answers` to its form); returns it.
    pub async fn create(
        &self,
        opener: u64,
        topic: &str,
        panel: Option<i64>,
        answers: &[Answer],
        now: i64,
    ) -> Result<Ticket, StoreError> {
        let answers = if answers.is_empty() {
            None
        } else {
            Some(serde_json::to_string(answers).map_err(|e| StoreError::Corrupt(format!("ticket answers: {e}")))?)
        };
        // Two openers at once may compute the same number; the primary key refuses the second,
        // which then takes the next one.
        let mut last_err = None;
        for _ in 0..5 {
            let result = sqlx::query_scalar::<_, i64>(
                "INSERT INTO tickets (guild_id, number, opener_id, topic, status, created_at, \
                 updated_at, updated_by, last_activity_at, paused_ms, first_response_breached, \
                 resolution_breached, reopened_count, panel_id, answers) \
                 SELECT $1, COALESCE(MAX(number), 0) + 1, $2, $3, 'open', $4, $4, $2, $4, 0, 0, 0, 0, $5, $6 \
                 FROM tickets WHERE guild_id = $1 RETURNING number",
            )
            .bind(self.gid())
            .bind(opener as i64)
            .bind(topic)
            .bind(now)
            .bind(panel)
            .bind(answers.as_deref())
            .fetch_one(self.pool())
            .await;
            match result {
                Ok(number) => {
                    return self.get(number).await?.ok_or_else(|| StoreError::NotFound(format!("ticket {number}")));
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err
            .map_or_else(|| StoreError::Corrupt("ticket number allocation failed".into()), StoreError::Database))
    }

    pub async fn get(&self, number: i64) -> Result<Option<Ticket>, StoreError> {
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM tickets WHERE guild_id = $1 AND number = $2")))
                .bind(self.gid())
                .bind(number)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The ticket whose thread or channel this is.
    pub async fn by_channel(&self, channel_id: u64) -> Result<Option<Ticket>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tickets WHERE guild_id = $1 AND channel_id = $2 \
             ORDER BY number DESC LIMIT 1"
        )))
        .bind(self.gid())
        .bind(channel_id as i64)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Tickets opened in `[from, to)` (unix ms), oldest first.
    pub async fn opened_between(&self, from: i64, to: i64) -> Result<Vec<Ticket>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tickets WHERE guild_id = $1 AND created_at >= $2 \
             AND created_at < $3 ORDER BY number"
        )))
        .bind(self.gid())
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Up to `limit` tickets, newest first, with a number below `before` when given, in
    /// `status` and of `opener` when given (the web API's list).
    pub async fn list(
        &self,
        status: Option<Status>,
        opener: Option<u64>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Ticket>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tickets WHERE guild_id = $1 \
             AND (CAST($2 AS TEXT) IS NULL OR status = $2) \
             AND (CAST($3 AS BIGINT) IS NULL OR opener_id = $3) \
             AND (CAST($4 AS BIGINT) IS NULL OR number < $4) \
             ORDER BY number DESC LIMIT $5"
        )))
        .bind(self.gid())
        .bind(status.map(Status::as_str))
        .bind(opener.map(|o| o as i64))
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Tickets of `opener` that are not closed.
    pub async fn open_count(&self, opener: u64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM tickets WHERE guild_id = $1 AND opener_id = $2 \
             AND status <> 'closed'",
        )
        .bind(self.gid())
        .bind(opener as i64)
        .fetch_one(self.pool())
        .await?)
    }

    /// When `opener` last opened a ticket.
    pub async fn last_opened_at(&self, opener: u64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MAX(created_at) FROM tickets WHERE guild_id = $1 AND opener_id = $2")
            .bind(self.gid())
            .bind(opener as i64)
            .fetch_one(self.pool())
            .await?)
    }

    pub async fn set_channel(&self, number: i64, channel_id: u64, message_id: Option<u64>) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET channel_id = $3, message_id = $4 WHERE guild_id = $1 AND number = $2")
            .bind(self.gid())
            .bind(number)
            .bind(channel_id as i64)
            .bind(message_id.map(|m| m as i64))
            .execute(self.pool())
            .await?;
        // Every process keeps the guild's ticket channels in memory (`channel_ids`).
        self.guild.mark_changed().await
    }

    /// Every channel (or thread) that holds or held one of this guild's tickets.
    pub async fn channel_ids(&self) -> Result<std::collections::HashSet<u64>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT channel_id FROM tickets WHERE guild_id = $1 AND channel_id IS NOT NULL")
                .bind(self.gid())
                .fetch_all(self.pool())
                .await?;
        Ok(ids.into_iter().map(|id| id as u64).collect())
    }

    /// Writes every mutable field of `t`.
    pub async fn save(&self, t: &Ticket) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET status = $3, claimed_by = $4, updated_at = $5, updated_by = $6, \
             last_activity_at = $7, closed_at = $8, closed_by = $9, paused_ms = $10, \
             paused_since = $11, first_response_breached = $12, resolution_breached = $13, \
             transcript_key = $14, reopened_count = $15 WHERE guild_id = $1 AND number = $2",
        )
        .bind(self.gid())
        .bind(t.number)
        .bind(t.status.as_str())
        .bind(t.claimed_by.map(|c| c as i64))
        .bind(t.updated_at)
        .bind(t.updated_by as i64)
        .bind(t.last_activity_at)
        .bind(t.closed_at)
        .bind(t.closed_by.map(|c| c as i64))
        .bind(t.paused_ms)
        .bind(t.paused_since)
        .bind(i64::from(t.first_response_breached))
        .bind(i64::from(t.resolution_breached))
        .bind(t.transcript_key.as_deref())
        .bind(t.reopened_count)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records activity (a message) in the ticket.
    pub async fn touch(&self, number: i64, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE tickets SET last_activity_at = $3 WHERE guild_id = $1 AND number = $2 \
             AND last_activity_at < $3",
        )
        .bind(self.gid())
        .bind(number)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Sets the first response if there was none; `true` when this was it.
    pub async fn first_response(&self, number: i64, responder: u64, at: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE tickets SET first_response_at = $3, first_responder_id = $4 \
             WHERE guild_id = $1 AND number = $2 AND first_response_at IS NULL",
        )
        .bind(self.gid())
        .bind(number)
        .bind(at)
        .bind(responder as i64)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    pub async fn set_feedback(&self, number: i64, rating: i64, comment: Option<&str>) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET rating = $3, feedback = $4 WHERE guild_id = $1 AND number = $2")
            .bind(self.gid())
            .bind(number)
            .bind(rating)
            .bind(comment)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Blocks `user` from opening tickets (or updates the reason of their block).
    pub async fn block(&self, user: u64, by: u64, reason: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ticket_blocks (guild_id, user_id, blocked_by, reason, at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (guild_id, user_id) DO UPDATE SET reason = excluded.reason, blocked_by = excluded.blocked_by",
        )
        .bind(self.gid())
        .bind(user as i64)
        .bind(by as i64)
        .bind(reason)
        .bind(at)
        .execute(self.guild.store().pool())
        .await?;
        Ok(())
    }

    /// Lifts a block; `false` when `user` was not blocked.
    pub async fn unblock(&self, user: u64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM ticket_blocks WHERE guild_id = $1 AND user_id = $2")
            .bind(self.gid())
            .bind(user as i64)
            .execute(self.guild.store().pool())
            .await?
            .rows_affected()
            > 0)
    }

    /// The reason `user` is blocked from opening tickets, if they are.
    pub async fn block_reason(&self, user: u64) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT reason FROM ticket_blocks WHERE guild_id = $1 AND user_id = $2")
            .bind(self.gid())
            .bind(user as i64)
            .fetch_optional(self.guild.store().pool())
            .await?)
    }

    /// Every panel of the guild, by name.
    pub async fn panels(&self) -> Result<Vec<Panel>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PANEL_COLUMNS} FROM ticket_panels WHERE guild_id = $1 ORDER BY name"
        )))
        .bind(self.gid())
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(panel_from_row).collect()
    }

    /// The panel with this id (from a button), if it still exists in this guild.
    pub async fn panel(&self, id: i64) -> Result<Option<Panel>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PANEL_COLUMNS} FROM ticket_panels WHERE guild_id = $1 AND id = $2"
        )))
        .bind(self.gid())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(panel_from_row).transpose()
    }

    /// The panel named `name`.
    pub async fn panel_by_name(&self, name: &str) -> Result<Option<Panel>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {PANEL_COLUMNS} FROM ticket_panels WHERE guild_id = $1 AND name = $2"
        )))
        .bind(self.gid())
        .bind(name)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(panel_from_row).transpose()
    }

    /// Stores a new panel (its `id` is ignored); returns it with its id.
    pub async fn create_panel(&self, p: &Panel, now: i64) -> Result<Panel, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO ticket_panels (guild_id, name, title, description, channel_id, category_id, \
             staff_role_id, questions, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(self.gid())
        .bind(&p.name)
        .bind(&p.title)
        .bind(&p.description)
        .bind(p.channel_id.map(|c| c as i64))
        .bind(p.category_id.map(|c| c as i64))
        .bind(p.staff_role_id.map(|r| r as i64))
        .bind(questions_json(&p.questions))
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(Panel { id, ..p.clone() })
    }

    /// Writes every field of `p` (found by its id).
    pub async fn save_panel(&self, p: &Panel) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE ticket_panels SET name = $3, title = $4, description = $5, channel_id = $6, \
             category_id = $7, staff_role_id = $8, questions = $9 WHERE guild_id = $1 AND id = $2",
        )
        .bind(self.gid())
        .bind(p.id)
        .bind(&p.name)
        .bind(&p.title)
        .bind(&p.description)
        .bind(p.channel_id.map(|c| c as i64))
        .bind(p.category_id.map(|c| c as i64))
        .bind(p.staff_role_id.map(|r| r as i64))
        .bind(questions_json(&p.questions))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Keeps ticket `number`'s question and staff's answer as knowledge (replacing what a
    /// previous resolution kept).
    pub async fn learn(&self, k: &Knowledge, by: u64, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ticket_knowledge (guild_id, number, question, answer, resolved_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (guild_id, number) DO UPDATE SET \
             question = excluded.question, answer = excluded.answer, resolved_by = excluded.resolved_by, \
             created_at = excluded.created_at",
        )
        .bind(self.gid())
        .bind(k.number)
        .bind(&k.question)
        .bind(&k.answer)
        .bind(by as i64)
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes ticket `number`'s knowledge; `false` when it had none.
    pub async fn forget(&self, number: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM ticket_knowledge WHERE guild_id = $1 AND number = $2")
            .bind(self.gid())
            .bind(number)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    /// Removes every ticket's knowledge of the guild; returns how many there were.
    pub async fn forget_all(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM ticket_knowledge WHERE guild_id = $1")
            .bind(self.gid())
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    /// Every resolved ticket kept as knowledge, by number.
    pub async fn knowledge(&self) -> Result<Vec<Knowledge>, StoreError> {
        let rows =
            sqlx::query("SELECT number, question, answer FROM ticket_knowledge WHERE guild_id = $1 ORDER BY number")
                .bind(self.gid())
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(Knowledge {
                    number: r.try_get("number")?,
                    question: r.try_get("question")?,
                    answer: r.try_get("answer")?,
                })
            })
            .collect()
    }

    /// Deletes a panel; `false` when there was none with this id. Its tickets keep their answers.
    pub async fn delete_panel(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM ticket_panels WHERE guild_id = $1 AND id = $2")
            .bind(self.gid())
            .bind(id)
            .execute(self.pool())
            .await?
            .rows_affected()
            > 0)
    }

    pub async fn record_event(
        &self,
        number: i64,
        actor: u64,
        kind: &str,
        from: Option<Status>,
        to: Option<Status>,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ticket_events (guild_id, number, actor_id, kind, from_status, to_status, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.gid())
        .bind(number)
        .bind(actor as i64)
        .bind(kind)
        .bind(from.map(Status::as_str))
        .bind(to.map(Status::as_str))
        .bind(at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Claims, first responses and resolutions since `since`, for one member or everyone.
    pub async fn stats(&self, member: Option<u64>, since: i64) -> Result<Stats, StoreError> {
        let m = member.map(|m| m as i64);
        let pool = self.pool();
        let opened: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tickets WHERE guild_id = $1 AND created_at >= $2")
            .bind(self.gid())
            .bind(since)
            .fetch_one(pool)
            .await?;
        let claims: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM ticket_events WHERE guild_id = $1 AND kind = 'claim' \
             AND at >= $2 AND (CAST($3 AS BIGINT) IS NULL OR actor_id = $3)",
        )
        .bind(self.gid())
        .bind(since)
        .bind(m)
        .fetch_one(pool)
        .await?;
        // Averages are computed here rather than in SQL: AVG's type differs between backends.
        let responses: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT created_at, first_response_at FROM tickets WHERE guild_id = $1 \
             AND first_response_at IS NOT NULL AND first_response_at >= $2 \
             AND (CAST($3 AS BIGINT) IS NULL OR first_responder_id = $3)",
        )
        .bind(self.gid())
        .bind(since)
        .bind(m)
        .fetch_all(pool)
        .await?;
        let resolutions: Vec<(i64, i64, Option<i64>)> = sqlx::query_as(
            "SELECT created_at, closed_at, rating FROM tickets WHERE guild_id = $1 \
             AND status = 'closed' AND closed_at >= $2 \
             AND (CAST($3 AS BIGINT) IS NULL OR claimed_by = $3 OR closed_by = $3)",
        )
        .bind(self.gid())
        .bind(since)
        .bind(m)
        .fetch_all(pool)
        .await?;
        let avg = |v: &[i64]| (!v.is_empty()).then(|| v.iter().sum::<i64>() / v.len() as i64);
        let fr: Vec<i64> = responses.iter().map(|(c, f)| f - c).collect();
        let res: Vec<i64> = resolutions.iter().map(|(c, cl, _)| cl - c).collect();
        let ratings: Vec<i64> = resolutions.iter().filter_map(|(_, _, r)| *r).collect();
        Ok(Stats {
            opened,
            closed: resolutions.len() as i64,
            claims,
            responded: fr.len() as i64,
            avg_first_response_ms: avg(&fr),
            resolved: res.len() as i64,
            avg_resolution_ms: avg(&res),
            avg_rating: (!ratings.is_empty()).then(|| ratings.iter().sum::<i64>() as f64 / ratings.len() as f64),
        })
    }
}

impl Repo {
    /// Tickets closed before `cutoff_ms` that still have a transcript: number and key.
    pub async fn transcripts_closed_before(&self, cutoff_ms: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT number, transcript_key FROM tickets WHERE guild_id = $1 AND transcript_key IS NOT NULL \
             AND closed_at < $2 ORDER BY number",
        )
        .bind(self.guild.sql_id())
        .bind(cutoff_ms)
        .fetch_all(self.guild.store().pool())
        .await?)
    }

    /// The ticket's transcript is gone (retention).
    pub async fn forget_transcript(&self, number: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tickets SET transcript_key = NULL WHERE guild_id = $1 AND number = $2")
            .bind(self.guild.sql_id())
            .bind(number)
            .execute(self.guild.store().pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::SCHEMA;
    use beacon_jobs::Jobs;
    use beacon_store::{Schema, Store};

    /// A store upgraded from before transcript retention: its `tickets.transcript_expiry` jobs,
    /// which no handler claims any more, are gone; other jobs and ended ones stay.
    #[tokio::test]
    async fn retired_transcript_expiry_jobs_are_removed_on_upgrade() {
        // The old version's process, then the new one's, on the same database file.
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("beacon.db").display());
        let old = Store::connect(&url).await.expect("sqlite");
        old.migrate().await.expect("core schema");
        old.migrate_schema(&beacon_jobs::SCHEMA).await.expect("jobs schema");
        let before = Schema { migrations: &SCHEMA.migrations[..5], ..SCHEMA };
        old.migrate_schema(&before).await.expect("tickets at version 5");
        let store = Store::connect(&url).await.expect("sqlite");
        let jobs = Jobs::new(store.clone());
        let later = beacon_store::now_ms() + 3_600_000;
        let payload = serde_json::json!({"key": "guilds/1/tickets/000001-1.html"});
        for guild in [1, 2] {
            jobs.schedule(guild, "tickets.transcript_expiry", &payload, later, None).await.expect("stale job");
        }
        jobs.schedule(1, crate::JOB_SLA, &serde_json::json!({}), later, None).await.expect("sla job");
        sqlx::query("UPDATE beacon_jobs SET state = 'done' WHERE guild_id = 2")
            .execute(store.pool())
            .await
            .expect("an ended job");

        store.migrate_schema(&SCHEMA).await.expect("tickets upgraded");
        let left: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT guild_id, kind, state FROM beacon_jobs ORDER BY guild_id, kind")
                .fetch_all(store.pool())
                .await
                .expect("jobs");
        let expected = [(1, crate::JOB_SLA, "pending"), (2, "tickets.transcript_expiry", "done")];
        let expected: Vec<(i64, String, String)> =
            expected.iter().map(|(g, k, s)| (*g, (*k).to_owned(), (*s).to_owned())).collect();
        assert_eq!(left, expected);
    }
}
