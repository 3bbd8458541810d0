//! Bans, kicks, timeouts and unbans made in Discord's own UI become cases, from
//! `GUILD_AUDIT_LOG_ENTRY_CREATE`. The bot's own actions are already cases: their entries are
//! matched to them (the case learns its audit entry), never recorded twice. Each entry is claimed
//! once across workers and redeliveries.

use beacon_framework::{EventCtx, HandlerResult};
use beacon_store::now_ms;
use twilight_model::guild::audit_log::{AuditLogChange, AuditLogEntry, AuditLogEventType};

use crate::flow::Moderation;
use crate::model::{CaseKind, DmStatus, NewCase, Repo, Source};

/// How far back a bot entry looks for its case (the case is written before the action).
const MATCH_WINDOW_MS: i64 = 10 * 60_000;

/// What the entry records, as a case kind, with a timeout's end (unix ms).
fn kind_of(entry: &AuditLogEntry, now: i64) -> Option<(CaseKind, Option<i64>)> {
    match entry.action_type {
        AuditLogEventType::MemberBanAdd => Some((CaseKind::Ban, None)),
        AuditLogEventType::MemberBanRemove => Some((CaseKind::Unban, None)),
        AuditLogEventType::MemberKick => Some((CaseKind::Kick, None)),
        AuditLogEventType::MemberUpdate => entry.changes.iter().find_map(|c| match c {
            AuditLogChange::CommunicationDisabledUntil { new, .. } => {
                match new.map(|t| t.as_micros() / 1000).filter(|until| *until > now) {
                    Some(until) => Some((CaseKind::Timeout, Some(until))),
                    None => Some((CaseKind::Untimeout, None)),
                }
            }
            _ => None,
        }),
        _ => None,
    }
}

/// Records (or matches) one audit log entry.
pub(crate) async fn on_entry(m: &Moderation, ctx: &EventCtx, entry: &AuditLogEntry) -> HandlerResult {
    let (Some(guild_id), Some(actor), Some(target)) = (entry.guild_id, entry.user_id, entry.target_id) else {
        return Ok(());
    };
    let now = now_ms();
    let Some((kind, until)) = kind_of(entry, now) else { return Ok(()) };
    let guild = m.app.guild(guild_id.get());
    let repo = Repo::new(guild.clone());
    if actor.get() == m.bot_id().await? {
        repo.match_audit_entry(kind, target.get(), entry.id.get(), now - MATCH_WINDOW_MS).await?;
        return Ok(());
    }
    if !ctx.claim("moderation-audit", entry.id.get()).await {
        return Ok(());
    }
    let reason =
        entry.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()).unwrap_or("No reason given in Discord.");
    let new = NewCase {
        duration_ms: until.map(|u| u - now),
        source: Source::Discord,
        dm_status: DmStatus::NotSent,
        audit_entry_id: Some(entry.id.get()),
        ..NewCase::new(kind, target.get(), actor.get(), reason)
    };
    let case = repo.create(&new, now).await?;
    tracing::info!(guild_id = guild.id(), case = case.number, kind = kind.as_str(), "action made in Discord recorded");
    if let Some(until) = until {
        m.schedule_timeout(&guild, &case, until).await?;
    }
    m.supersede(&guild, &case).await?;
    let case = m.case(&guild, case.number).await?;
    m.publish(&guild, &case).await;
    Ok(())
}
