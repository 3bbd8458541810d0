//! Cases as stored: `mod_cases`, their append-only history `mod_case_events`, the per-guild
//! counter `mod_case_counters` and ban appeals `mod_appeals`, always scoped to one guild through
//! a [`GuildStore`].

use beacon_store::{GuildStore, Schema, StoreError};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// The moderation tables.
pub const SCHEMA: Schema = Schema {
    name: "moderation",
    migrations: &[
        beacon_store::migration!(1, "moderation cases, history, counters and appeals", "0001_cases.sql"),
        beacon_store::migration!(
            2,
            "case history is append-only",
            "0002_append_only.sql",
            postgres = "0002_append_only.postgres.sql"
        ),
    ],
    guild_tables: &["mod_appeals", "mod_case_events", "mod_cases", "mod_case_counters"],
};

/// What a case records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaseKind {
    /// A warning (no effect in Discord; counts towards escalation).
    Warn,
    /// A timeout (Discord's member timeout, renewed past its 28-day maximum).
    Timeout,
    /// A timeout removed early.
    Untimeout,
    /// The member was kicked.
    Kick,
    /// The user was banned (for a while, or for good).
    Ban,
    /// The user was unbanned.
    Unban,
    /// A staff note (the member is not told).
    Note,
}

impl CaseKind {
    /// Every kind, in the order `/case list` offers them.
    pub const ALL: [CaseKind; 7] = [
        CaseKind::Warn,
        CaseKind::Timeout,
        CaseKind::Untimeout,
        CaseKind::Kick,
        CaseKind::Ban,
        CaseKind::Unban,
        CaseKind::Note,
    ];

    /// The name stored in the database (and used in exports and custom ids).
    pub fn as_str(self) -> &'static str {
        match self {
            CaseKind::Warn => "warn",
            CaseKind::Timeout => "timeout",
            CaseKind::Untimeout => "untimeout",
            CaseKind::Kick => "kick",
            CaseKind::Ban => "ban",
            CaseKind::Unban => "unban",
            CaseKind::Note => "note",
        }
    }

    /// The kind named `s` (see [`CaseKind::as_str`]).
    pub fn parse(s: &str) -> Option<CaseKind> {
        CaseKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How people call it: `Warning`, `Timeout`, …
    pub fn title(self) -> &'static str {
        match self {
            CaseKind::Warn => "Warning",
            CaseKind::Timeout => "Timeout",
            CaseKind::Untimeout => "Timeout removed",
            CaseKind::Kick => "Kick",
            CaseKind::Ban => "Ban",
            CaseKind::Unban => "Unban",
            CaseKind::Note => "Note",
        }
    }

    /// The embed colour of the kind (RGB).
    pub fn color(self) -> u32 {
        match self {
            CaseKind::Warn => 0xEAB308,
            CaseKind::Timeout => 0xF97316,
            CaseKind::Kick => 0xEF4444,
            CaseKind::Ban => 0x991B1B,
            CaseKind::Untimeout | CaseKind::Unban => 0x22C55E,
            CaseKind::Note => 0x6B7280,
        }
    }
}

/// Where a case came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A Beacon command (slash command or context menu).
    Command,
    /// Done in Discord's own UI, recorded from its audit log.
    Discord,
    /// Applied by the guild's escalation rule.
    Escalation,
    /// An accepted appeal.
    Appeal,
}

impl Source {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Command => "command",
            Source::Discord => "discord",
            Source::Escalation => "escalation",
            Source::Appeal => "appeal",
        }
    }

    fn parse(s: &str) -> Option<Source> {
        [Source::Command, Source::Discord, Source::Escalation, Source::Appeal].into_iter().find(|x| x.as_str() == s)
    }
}

/// Whether the member was told by DM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmStatus {
    /// Not tried yet.
    Pending,
    /// Delivered.
    Sent,
    /// Discord refused it or it failed (`dm_detail` says why).
    Failed,
    /// Not sent on purpose (a note, DMs turned off, an action made in Discord's UI).
    NotSent,
}

impl DmStatus {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DmStatus::Pending => "pending",
            DmStatus::Sent => "sent",
            DmStatus::Failed => "failed",
            DmStatus::NotSent => "not_sent",
        }
    }

    fn parse(s: &str) -> Option<DmStatus> {
        [DmStatus::Pending, DmStatus::Sent, DmStatus::Failed, DmStatus::NotSent].into_iter().find(|x| x.as_str() == s)
    }
}

/// One case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// The guild.
    pub guild_id: u64,
    /// Per-guild number, from 1, without gaps.
    pub number: i64,
    /// What it records.
    pub kind: CaseKind,
    /// The member (or user, for bans by id) acted on.
    pub target_id: u64,
    /// Who acted (the bot's id for escalations and timed actions).
    pub moderator_id: u64,
    /// The current reason (edits are in the history).
    pub reason: String,
    /// Length of a timed action.
    pub duration_ms: Option<i64>,
    /// When the timed action is due to end, unix ms.
    pub ends_at: Option<i64>,
    /// When it ended (Beacon lifted it, or a later case did), unix ms.
    pub ended_at: Option<i64>,
    /// How it ended.
    pub end_note: Option<String>,
    /// Where the case came from.
    pub source: Source,
    /// Whether the member was told.
    pub dm_status: DmStatus,
    /// Why the DM was not sent.
    pub dm_detail: Option<String>,
    /// Why the action could not be carried out in Discord, if it could not.
    pub failed: Option<String>,
    /// The Discord audit-log entry of the action, once matched.
    pub audit_entry_id: Option<u64>,
    /// A case this one follows from (the ban an appeal lifted, the warning that escalated).
    pub related_case: Option<i64>,
    /// The mod-log message (edited in place when the case changes).
    pub log_channel_id: Option<u64>,
    /// See `log_channel_id`.
    pub log_message_id: Option<u64>,
    /// Created, unix ms.
    pub created_at: i64,
    /// Last change, unix ms.
    pub updated_at: i64,
}

impl Case {
    /// `#12`.
    pub fn label(&self) -> String {
        format!("#{}", self.number)
    }

    /// A timed action still waiting for its end.
    pub fn is_running(&self) -> bool {
        self.ends_at.is_some() && self.ended_at.is_none() && self.failed.is_none()
    }
}

/// One line of a case's history (never changed once written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseEvent {
    /// Row id (history order).
    pub id: i64,
    /// Who did it (0 or the bot for Beacon itself).
    pub actor_id: u64,
    /// `created`, `reason`, `dm`, `ended`, `renewed`, `failed`, `appeal`, `audit`.
    pub kind: String,
    /// What changed, for people.
    pub detail: String,
    /// When, unix ms.
    pub at: i64,
}

/// Where an appeal is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppealState {
    /// Waiting for the moderators.
    Open,
    /// Accepted: the ban was lifted.
    Accepted,
    /// Denied.
    Denied,
}

impl AppealState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            AppealState::Open => "open",
            AppealState::Accepted => "accepted",
            AppealState::Denied => "denied",
        }
    }

    fn parse(s: &str) -> Option<AppealState> {
        [AppealState::Open, AppealState::Accepted, AppealState::Denied].into_iter().find(|x| x.as_str() == s)
    }
}

/// A banned member's appeal of their ban case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appeal {
    /// Row id (in the Accept/Deny buttons' custom ids).
    pub id: i64,
    /// The ban case appealed.
    pub case_number: i64,
    /// Who appealed.
    pub user_id: u64,
    /// What they wrote.
    pub body: String,
    /// Where it is.
    pub state: AppealState,
    /// The message in the appeals channel.
    pub channel_id: Option<u64>,
    /// See `channel_id`.
    pub message_id: Option<u64>,
    /// Filed, unix ms.
    pub created_at: i64,
    /// Decided, unix ms.
    pub decided_at: Option<i64>,
    /// By whom.
    pub decided_by: Option<u64>,
}

/// A case to record.
#[derive(Debug, Clone)]
pub struct NewCase<'a> {
    /// What it records.
    pub kind: CaseKind,
    /// Who is acted on.
    pub target_id: u64,
    /// Who acts.
    pub moderator_id: u64,
    /// Why.
    pub reason: &'a str,
    /// Length of a timed action.
    pub duration_ms: Option<i64>,
    /// Where it came from.
    pub source: Source,
    /// The DM status it starts with.
    pub dm_status: DmStatus,
    /// A case it follows from.
    pub related_case: Option<i64>,
    /// The audit-log entry, for actions recorded from Discord's audit log.
    pub audit_entry_id: Option<u64>,
}

impl<'a> NewCase<'a> {
    /// A case of `kind` by `moderator_id` on `target_id` for `reason`, from a command, DM pending.
    pub fn new(kind: CaseKind, target_id: u64, moderator_id: u64, reason: &'a str) -> NewCase<'a> {
        NewCase {
            kind,
            target_id,
            moderator_id,
            reason,
            duration_ms: None,
            source: Source::Command,
            dm_status: DmStatus::Pending,
            related_case: None,
            audit_entry_id: None,
        }
    }
}

/// Which cases `/case list` shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter {
    /// Only this member's cases.
    pub target_id: Option<u64>,
    /// Only this kind.
    pub kind: Option<CaseKind>,
}

const COLUMNS: &str = "guild_id, number, kind, target_id, moderator_id, reason, duration_ms, ends_at, \
    ended_at, end_note, source, dm_status, dm_detail, failed, audit_entry_id, related_case, \
    log_channel_id, log_message_id, created_at, updated_at";

const APPEAL_COLUMNS: &str =
    "id, case_number, user_id, body, state, channel_id, message_id, created_at, decided_at, decided_by";

/// `'ban', 'unban'`: kinds inlined in SQL (they are this module's own constants, never input).
fn kind_list(kinds: &[CaseKind]) -> String {
    kinds.iter().map(|k| format!("'{}'", k.as_str())).collect::<Vec<_>>().join(", ")
}

fn opt_id(row: &AnyRow, col: &str) -> Result<Option<u64>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(|v| v as u64))
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("unknown {what} {value:?}"))
}

fn case_from_row(row: &AnyRow) -> Result<Case, StoreError> {
    let kind: String = row.try_get("kind")?;
    let source: String = row.try_get("source")?;
    let dm: String = row.try_get("dm_status")?;
    Ok(Case {
        guild_id: row.try_get::<i64, _>("guild_id")? as u64,
        number: row.try_get("number")?,
        kind: CaseKind::parse(&kind).ok_or_else(|| corrupt("case kind", &kind))?,
        target_id: row.try_get::<i64, _>("target_id")? as u64,
        moderator_id: row.try_get::<i64, _>("moderator_id")? as u64,
        reason: row.try_get("reason")?,
        duration_ms: row.try_get("duration_ms")?,
        ends_at: row.try_get("ends_at")?,
        ended_at: row.try_get("ended_at")?,
        end_note: row.try_get("end_note")?,
        source: Source::parse(&source).ok_or_else(|| corrupt("case source", &source))?,
        dm_status: DmStatus::parse(&dm).ok_or_else(|| corrupt("DM status", &dm))?,
        dm_detail: row.try_get("dm_detail")?,
        failed: row.try_get("failed")?,
        audit_entry_id: opt_id(row, "audit_entry_id")?,
        related_case: row.try_get("related_case")?,
        log_channel_id: opt_id(row, "log_channel_id")?,
        log_message_id: opt_id(row, "log_message_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn appeal_from_row(row: &AnyRow) -> Result<Appeal, StoreError> {
    let state: String = row.try_get("state")?;
    Ok(Appeal {
        id: row.try_get("id")?,
        case_number: row.try_get("case_number")?,
        user_id: row.try_get::<i64, _>("user_id")? as u64,
        body: row.try_get("body")?,
        state: AppealState::parse(&state).ok_or_else(|| corrupt("appeal state", &state))?,
        channel_id: opt_id(row, "channel_id")?,
        message_id: opt_id(row, "message_id")?,
        created_at: row.try_get("created_at")?,
        decided_at: row.try_get("decided_at")?,
        decided_by: opt_id(row, "decided_by")?,
    })
}

/// The cases of one guild.
#[derive(Clone)]
pub struct Repo {
    guild: GuildStore,
}

impl Repo {
    /// The cases of `guild`.
    pub fn new(guild: GuildStore) -> Repo {
        Repo { guild }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.guild.store().pool()
    }

    fn gid(&self) -> i64 {
        self.guild.sql_id()
    }

    /// Records a case under the guild's next number. The counter is incremented, the case and
    /// its first history line inserted in one write transaction: concurrent writers (other
    /// tasks, other processes) wait their turn, and a failure rolls the number back, so numbers
    /// have neither gaps nor duplicates.
    pub async fn create(&self, new: &NewCase<'_>, now: i64) -> Result<Case, StoreError> {
        let ends_at = new.duration_ms.map(|d| now.saturating_add(d));
        let mut tx = self.guild.store().begin_write().await?;
        let number: i64 = sqlx::query_scalar(
            "INSERT INTO mod_case_counters (guild_id, last_number) VALUES ($1, 1) \
             ON CONFLICT (guild_id) DO UPDATE SET last_number = mod_case_counters.last_number + 1 \
             RETURNING last_number",
        )
        .bind(self.gid())
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO mod_cases (guild_id, number, kind, target_id, moderator_id, reason, duration_ms, \
             ends_at, source, dm_status, audit_entry_id, related_case, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
        )
        .bind(self.gid())
        .bind(number)
        .bind(new.kind.as_str())
        .bind(new.target_id as i64)
        .bind(new.moderator_id as i64)
        .bind(new.reason)
        .bind(new.duration_ms)
        .bind(ends_at)
        .bind(new.source.as_str())
        .bind(new.dm_status.as_str())
        .bind(new.audit_entry_id.map(|v| v as i64))
        .bind(new.related_case)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, self.gid(), number, new.moderator_id, "created", new.reason, now).await?;
        tx.commit().await?;
        self.get(number).await?.ok_or_else(|| StoreError::NotFound(format!("case {number}")))
    }

    /// Case `number`.
    pub async fn get(&self, number: i64) -> Result<Option<Case>, StoreError> {
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {COLUMNS} FROM mod_cases WHERE guild_id = $1 AND number = $2")))
                .bind(self.gid())
                .bind(number)
                .fetch_optional(self.pool())
                .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// Cases matching `filter`, newest first, at most `limit`.
    pub async fn list(&self, filter: Filter, limit: i64) -> Result<Vec<Case>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mod_cases WHERE guild_id = $1 \
             AND ($2 IS NULL OR target_id = $2) AND ($3 IS NULL OR kind = $3) \
             ORDER BY number DESC LIMIT $4"
        )))
        .bind(self.gid())
        .bind(filter.target_id.map(|v| v as i64))
        .bind(filter.kind.map(CaseKind::as_str))
        .bind(limit.max(0))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(case_from_row).collect()
    }

    /// How many cases match `filter`, by kind.
    pub async fn counts(&self, filter: Filter) -> Result<Vec<(CaseKind, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, COUNT(*) AS n FROM mod_cases WHERE guild_id = $1 \
             AND ($2 IS NULL OR target_id = $2) AND ($3 IS NULL OR kind = $3) GROUP BY kind",
        )
        .bind(self.gid())
        .bind(filter.target_id.map(|v| v as i64))
        .bind(filter.kind.map(CaseKind::as_str))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for row in &rows {
            let kind: String = row.try_get("kind")?;
            out.push((CaseKind::parse(&kind).ok_or_else(|| corrupt("case kind", &kind))?, row.try_get("n")?));
        }
        out.sort_by_key(|(k, _)| CaseKind::ALL.iter().position(|x| x == k));
        Ok(out)
    }

    /// Cases created in `[from_ms, to_ms)`, oldest first.
    pub async fn created_between(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Case>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mod_cases WHERE guild_id = $1 AND created_at >= $2 AND created_at < $3 \
             ORDER BY number"
        )))
        .bind(self.gid())
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(case_from_row).collect()
    }

    /// The history of case `number`, oldest first.
    pub async fn events(&self, number: i64) -> Result<Vec<CaseEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, actor_id, kind, detail, at FROM mod_case_events WHERE guild_id = $1 AND number = $2 \
             ORDER BY id",
        )
        .bind(self.gid())
        .bind(number)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(CaseEvent {
                    id: row.try_get("id")?,
                    actor_id: row.try_get::<i64, _>("actor_id")? as u64,
                    kind: row.try_get("kind")?,
                    detail: row.try_get("detail")?,
                    at: row.try_get("at")?,
                })
            })
            .collect()
    }

    /// Appends a line to the history of case `number` (and touches the case).
    pub async fn add_event(
        &self,
        number: i64,
        actor: u64,
        kind: &str,
        detail: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.guild.store().begin_write().await?;
        insert_event(&mut tx, self.gid(), number, actor, kind, detail, at).await?;
        touch(&mut tx, self.gid(), number, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Changes the reason of case `number`, keeping the old one in the history. `None` when
    /// there is no such case.
    pub async fn edit_reason(
        &self,
        number: i64,
        actor: u64,
        reason: &str,
        at: i64,
    ) -> Result<Option<Case>, StoreError> {
        let mut tx = self.guild.store().begin_write().await?;
        let n = sqlx::query("UPDATE mod_cases SET reason = $3, updated_at = $4 WHERE guild_id = $1 AND number = $2")
            .bind(self.gid())
            .bind(number)
            .bind(reason)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Ok(None);
        }
        insert_event(&mut tx, self.gid(), number, actor, "reason", reason, at).await?;
        tx.commit().await?;
        self.get(number).await
    }

    /// Records whether the member was told by DM.
    pub async fn set_dm(&self, number: i64, status: DmStatus, detail: Option<&str>, at: i64) -> Result<(), StoreError> {
        let mut tx = self.guild.store().begin_write().await?;
        sqlx::query(
            "UPDATE mod_cases SET dm_status = $3, dm_detail = $4, updated_at = $5 WHERE guild_id = $1 AND number = $2",
        )
        .bind(self.gid())
        .bind(number)
        .bind(status.as_str())
        .bind(detail)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        let line = match detail {
            Some(d) => format!("{}: {d}", status.as_str()),
            None => status.as_str().to_owned(),
        };
        insert_event(&mut tx, self.gid(), number, 0, "dm", &line, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that the action of case `number` could not be carried out in Discord.
    pub async fn set_failed(&self, number: i64, why: &str, at: i64) -> Result<(), StoreError> {
        let mut tx = self.guild.store().begin_write().await?;
        sqlx::query("UPDATE mod_cases SET failed = $3, updated_at = $4 WHERE guild_id = $1 AND number = $2")
            .bind(self.gid())
            .bind(number)
            .bind(why)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        insert_event(&mut tx, self.gid(), number, 0, "failed", why, at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records that the timed action of case `number` ended at `at` (`note` says how), once:
    /// `false` when it had already ended.
    pub async fn end(&self, number: i64, actor: u64, note: &str, at: i64) -> Result<bool, StoreError> {
        let mut tx = self.guild.store().begin_write().await?;
        let n = sqlx::query(
            "UPDATE mod_cases SET ended_at = $3, end_note = $4, updated_at = $3 \
             WHERE guild_id = $1 AND number = $2 AND ended_at IS NULL",
        )
        .bind(self.gid())
        .bind(number)
        .bind(at)
        .bind(note)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        insert_event(&mut tx, self.gid(), number, actor, "ended", note, at).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Remembers the mod-log message of case `number`; with `only_first`, only when the case
    /// has none yet (`false` then means another message was recorded first).
    pub async fn set_log_message(
        &self,
        number: i64,
        channel_id: u64,
        message_id: u64,
        only_first: bool,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE mod_cases SET log_channel_id = $3, log_message_id = $4 \
             WHERE guild_id = $1 AND number = $2 AND ($5 = 0 OR log_message_id IS NULL)",
        )
        .bind(self.gid())
        .bind(number)
        .bind(channel_id as i64)
        .bind(message_id as i64)
        .bind(i64::from(only_first))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Matches a Discord audit-log entry made by the bot with the latest case of `kind` on
    /// `target_id` created since `since` that has none yet; returns its number.
    pub async fn match_audit_entry(
        &self,
        kind: CaseKind,
        target_id: u64,
        entry_id: u64,
        since: i64,
    ) -> Result<Option<i64>, StoreError> {
        let number: Option<i64> = sqlx::query_scalar(
            "SELECT number FROM mod_cases WHERE guild_id = $1 AND kind = $2 AND target_id = $3 \
             AND audit_entry_id IS NULL AND created_at >= $4 ORDER BY number DESC LIMIT 1",
        )
        .bind(self.gid())
        .bind(kind.as_str())
        .bind(target_id as i64)
        .bind(since)
        .fetch_optional(self.pool())
        .await?;
        let Some(number) = number else { return Ok(None) };
        sqlx::query(
            "UPDATE mod_cases SET audit_entry_id = $3 WHERE guild_id = $1 AND number = $2 AND audit_entry_id IS NULL",
        )
        .bind(self.gid())
        .bind(number)
        .bind(entry_id as i64)
        .execute(self.pool())
        .await?;
        Ok(Some(number))
    }

    /// Timed cases of these kinds on `target_id` still waiting for their end, newest first.
    pub async fn running(&self, target_id: u64, kinds: &[CaseKind]) -> Result<Vec<Case>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mod_cases WHERE guild_id = $1 AND target_id = $2 AND kind IN ({}) \
             AND ends_at IS NOT NULL AND ended_at IS NULL AND failed IS NULL ORDER BY number DESC",
            kind_list(kinds)
        )))
        .bind(self.gid())
        .bind(target_id as i64)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(case_from_row).collect()
    }

    /// The newest case of one of these kinds on `target_id` whose action was carried out.
    pub async fn latest(&self, target_id: u64, kinds: &[CaseKind]) -> Result<Option<Case>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM mod_cases WHERE guild_id = $1 AND target_id = $2 AND kind IN ({}) \
             AND failed IS NULL ORDER BY number DESC LIMIT 1",
            kind_list(kinds)
        )))
        .bind(self.gid())
        .bind(target_id as i64)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// Warnings of `target_id` created after `after` (unix ms), oldest first.
    pub async fn warnings_after(&self, target_id: u64, after: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT number FROM mod_cases WHERE guild_id = $1 AND target_id = $2 AND kind = 'warn' \
             AND created_at > $3 ORDER BY number",
        )
        .bind(self.gid())
        .bind(target_id as i64)
        .bind(after)
        .fetch_all(self.pool())
        .await?)
    }

    /// When `target_id` was last escalated (their newest escalation case), unix ms.
    pub async fn last_escalation(&self, target_id: u64) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT MAX(created_at) FROM mod_cases WHERE guild_id = $1 AND target_id = $2 AND source = 'escalation'",
        )
        .bind(self.gid())
        .bind(target_id as i64)
        .fetch_one(self.pool())
        .await?)
    }

    /// Files an appeal of case `number`; `None` when the case already has an open one.
    pub async fn open_appeal(&self, number: i64, user: u64, body: &str, at: i64) -> Result<Option<Appeal>, StoreError> {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO mod_appeals (guild_id, case_number, user_id, body, state, created_at) \
             VALUES ($1, $2, $3, $4, 'open', $5) \
             ON CONFLICT (guild_id, case_number) WHERE state = 'open' DO NOTHING RETURNING id",
        )
        .bind(self.gid())
        .bind(number)
        .bind(user as i64)
        .bind(body)
        .bind(at)
        .fetch_optional(self.pool())
        .await?;
        match id {
            Some(id) => self.appeal(id).await,
            None => Ok(None),
        }
    }

    /// Appeal `id`.
    pub async fn appeal(&self, id: i64) -> Result<Option<Appeal>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {APPEAL_COLUMNS} FROM mod_appeals WHERE guild_id = $1 AND id = $2"
        )))
        .bind(self.gid())
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(appeal_from_row).transpose()
    }

    /// The newest appeal of case `number`.
    pub async fn latest_appeal(&self, number: i64) -> Result<Option<Appeal>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {APPEAL_COLUMNS} FROM mod_appeals WHERE guild_id = $1 AND case_number = $2 ORDER BY id DESC LIMIT 1"
        )))
        .bind(self.gid())
        .bind(number)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(appeal_from_row).transpose()
    }

    /// Decides open appeal `id`, once: `false` when it was already decided.
    pub async fn decide_appeal(&self, id: i64, state: AppealState, by: u64, at: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE mod_appeals SET state = $3, decided_by = $4, decided_at = $5 \
             WHERE guild_id = $1 AND id = $2 AND state = 'open'",
        )
        .bind(self.gid())
        .bind(id)
        .bind(state.as_str())
        .bind(by as i64)
        .bind(at)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Remembers the appeals-channel message of appeal `id`.
    pub async fn set_appeal_message(&self, id: i64, channel_id: u64, message_id: u64) -> Result<(), StoreError> {
        sqlx::query("UPDATE mod_appeals SET channel_id = $3, message_id = $4 WHERE guild_id = $1 AND id = $2")
            .bind(self.gid())
            .bind(id)
            .bind(channel_id as i64)
            .bind(message_id as i64)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

async fn insert_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    gid: i64,
    number: i64,
    actor: u64,
    kind: &str,
    detail: &str,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mod_case_events (guild_id, number, actor_id, kind, detail, at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(gid)
    .bind(number)
    .bind(actor as i64)
    .bind(kind)
    .bind(detail)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn touch(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    gid: i64,
    number: i64,
    at: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE mod_cases SET updated_at = $3 WHERE guild_id = $1 AND number = $2")
        .bind(gid)
        .bind(number)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in CaseKind::ALL {
            assert_eq!(CaseKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(CaseKind::parse("mute"), None);
        for s in [DmStatus::Pending, DmStatus::Sent, DmStatus::Failed, DmStatus::NotSent] {
            assert_eq!(DmStatus::parse(s.as_str()), Some(s));
        }
    }
}
