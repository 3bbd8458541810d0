//! What the durable jobs do when they fire: lift a temporary ban, renew a long timeout, record
//! a timeout's end.
//!
//! The job library runs a job once across workers, but a worker killed mid-job (kill -9) has its
//! job run again once the lease expires. So each handler first reads the case and asks Discord
//! how things stand, and only then acts: a ban already lifted is not lifted again (the re-run
//! just records it), a timeout already renewed to the same end is not renewed again, and a case
//! whose end was recorded is left alone. The effect in Discord happens once.

use beacon_discord::rest::discord_error;
use beacon_framework::{HandlerError, HandlerResult};
use beacon_jobs::{Failure, Job, JobHandler};
use beacon_store::now_ms;
use serde_json::json;
use twilight_http::request::AuditLogReason;
use twilight_model::id::Id;

use crate::flow::{self, JOB_TIMEOUT, JOB_UNBAN, MAX_TIMEOUT_MS, Moderation, audit_reason};
use crate::model::{CaseKind, Repo};
use crate::text;

/// Handles the moderation job kinds.
pub struct ModerationJobs {
    pub(crate) moderation: Moderation,
}

fn failure(e: HandlerError) -> Failure {
    match &e {
        HandlerError::User(m) | HandlerError::Forbidden(m) => Failure::permanent(m.clone()),
        // Discord refusing (missing permissions, unknown guild) will refuse again; a 429 or a
        // 5xx may not.
        HandlerError::Discord(inner) => {
            let status = inner.downcast_ref::<twilight_http::Error>().and_then(discord_error).map(|(s, _)| s);
            match status {
                Some(s) if (400..500).contains(&s) && s != 429 => Failure::permanent(e.to_string()),
                _ => Failure::retry(e.to_string()),
            }
        }
        _ => Failure::retry(e.to_string()),
    }
}

fn not_found(e: &twilight_http::Error) -> bool {
    discord_error(e).is_some_and(|(s, _)| s == 404)
}

#[async_trait::async_trait]
impl JobHandler for ModerationJobs {
    async fn run(&self, job: &Job) -> Result<(), Failure> {
        let result = match job.kind.as_str() {
            JOB_UNBAN => self.unban(job).await,
            JOB_TIMEOUT => self.timeout(job).await,
            other => return Err(Failure::permanent(format!("unknown kind {other}"))),
        };
        result.map_err(failure)
    }
}

impl ModerationJobs {
    fn ids(job: &Job) -> HandlerResult<(i64, u64)> {
        match (job.payload["case"].as_i64(), job.payload["user"].as_u64()) {
            (Some(case), Some(user)) => Ok((case, user)),
            _ => Err(HandlerError::user(format!("job payload {} has no case and user", job.payload))),
        }
    }

    /// Lifts the temporary ban of the job's case, unless it already ended or was replaced.
    async fn unban(&self, job: &Job) -> HandlerResult {
        let m = &self.moderation;
        let guild = m.app.guild(job.guild_id);
        let repo = Repo::new(guild.clone());
        let (number, user) = Self::ids(job)?;
        let Some(case) = repo.get(number).await? else { return Ok(()) };
        if case.ended_at.is_some() || case.failed.is_some() {
            return Ok(());
        }
        let bot = m.bot_id().await?;
        if let Some(latest) = repo.latest(user, &[CaseKind::Ban, CaseKind::Unban]).await?
            && latest.number != number
        {
            repo.end(number, bot, &format!("replaced by case {}", latest.label()), now_ms()).await?;
        } else {
            let (gid, uid) = (Id::new(job.guild_id), Id::new(user));
            let note = match m.app.http.ban(gid, uid).await {
                Ok(_) => {
                    let reason = audit_reason(number, bot, "temporary ban ended");
                    match m.app.http.delete_ban(gid, uid).reason(&reason).await {
                        Ok(_) => "ban lifted",
                        Err(e) if not_found(&e) => "ban had already been lifted",
                        Err(e) => return Err(e.into()),
                    }
                }
                // Lifted already: by a run of this job cut short after the unban, or by hand.
                Err(e) if not_found(&e) => "ban had already been lifted",
                Err(e) => return Err(e.into()),
            };
            if repo.end(number, bot, note, now_ms()).await? {
                tracing::info!(guild_id = job.guild_id, case = number, note, "temporary ban ended");
            }
        }
        let case = m.case(&guild, number).await?;
        m.publish(&guild, &case).await;
        Ok(())
    }

    /// Renews a timeout longer than Discord allows, or records that it ended.
    async fn timeout(&self, job: &Job) -> HandlerResult {
        let m = &self.moderation;
        let guild = m.app.guild(job.guild_id);
        let repo = Repo::new(guild.clone());
        let (number, user) = Self::ids(job)?;
        let Some(case) = repo.get(number).await? else { return Ok(()) };
        let Some(ends_at) = case.ends_at.filter(|_| case.ended_at.is_none() && case.failed.is_none()) else {
            return Ok(());
        };
        let bot = m.bot_id().await?;
        let now = now_ms();
        if now + 1000 >= ends_at {
            // Discord lifts the timeout itself at its end; the case records when.
            repo.end(number, bot, "timeout ended", now.max(ends_at)).await?;
        } else {
            let until = ends_at.min(now + MAX_TIMEOUT_MS);
            let (gid, uid) = (Id::new(job.guild_id), Id::new(user));
            let member = match m.app.http.guild_member(gid, uid).await {
                Ok(resp) => resp.model().await?,
                Err(e) if not_found(&e) => {
                    // Not in the server now: look again later (a timeout waits for their return).
                    let payload = json!({"case": number, "user": user});
                    let key = format!("timeout:{user}");
                    m.jobs
                        .schedule(job.guild_id, JOB_TIMEOUT, &payload, now + 3_600_000, Some(&key))
                        .await
                        .map_err(HandlerError::internal)?;
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            };
            let current = member.communication_disabled_until.map(|t| t.as_micros() / 1000);
            if current.is_none_or(|c| c < until - 60_000) {
                let reason = audit_reason(number, bot, "timeout renewed (Discord allows 28 days at a time)");
                m.app
                    .http
                    .update_guild_member(gid, uid)
                    .communication_disabled_until(Some(flow::timestamp(until)?))
                    .reason(&reason)
                    .await?;
                repo.add_event(number, bot, "renewed", &format!("timed out until {}", text::time(until)), now).await?;
            }
            m.schedule_timeout(&guild, &case, until).await?;
        }
        let case = m.case(&guild, number).await?;
        m.publish(&guild, &case).await;
        Ok(())
    }
}
