//! What the durable timers do when they fire: SLA reminders and escalation, inactivity
//! auto-close, transcript expiry. Each handler re-reads the ticket first, so a timer that fires
//! late, twice (after a crashed worker) or after the situation changed does the right thing.

use beacon_framework::app::core_settings;
use beacon_framework::{HandlerError, HandlerResult};
use beacon_jobs::{Failure, Job, JobHandler};
use beacon_store::now_ms;
use twilight_model::channel::message::AllowedMentions;
use twilight_model::id::Id;

use crate::flow::{Desk, JOB_SLA, SYSTEM};
use crate::keys;
use crate::model::{Repo, Status};

/// Handles the ticket job kinds.
pub struct TicketJobs {
    pub(crate) desk: Desk,
}

fn failure(e: HandlerError) -> Failure {
    match e {
        // The ticket vanished or the action no longer applies: nothing to retry.
        HandlerError::User(m) | HandlerError::Forbidden(m) => Failure::permanent(m),
        other => Failure::retry(other.to_string()),
    }
}

#[async_trait::async_trait]
impl JobHandler for TicketJobs {
    async fn run(&self, job: &Job) -> Result<(), Failure> {
        let result = match job.kind.as_str() {
            crate::flow::JOB_SLA => self.sla(job).await,
            crate::flow::JOB_AUTOCLOSE => self.autoclose(job).await,
            other => return Err(Failure::permanent(format!("unknown kind {other}"))),
        };
        result.map_err(failure)
    }
}

impl TicketJobs {
    fn number(job: &Job) -> Result<i64, HandlerError> {
        job.payload["ticket"].as_i64().ok_or_else(|| HandlerError::user("job payload has no ticket number"))
    }

    async fn sla(&self, job: &Job) -> HandlerResult {
        let desk = &self.desk;
        let guild = desk.app.guild(job.guild_id);
        let number = Self::number(job)?;
        let first = job.payload["clock"].as_str() == Some("first_response");
        let Some(mut t) = Repo::new(guild.clone()).get(number).await? else {
            return Ok(());
        };
        // Paused clocks are rescheduled when the wait ends; answered or closed ones are done.
        if t.status == Status::Closed
            || t.status == Status::WaitingForUser
            || (first && (t.first_response_at.is_some() || t.first_response_breached))
            || (!first && t.resolution_breached)
        {
            return Ok(());
        }
        let key = if first { keys::FIRST_RESPONSE_SLA } else { keys::RESOLUTION_SLA };
        let sla = desk.app.settings.get_duration(&guild, key).await?.as_millis() as i64;
        if sla == 0 {
            return Ok(());
        }
        let now = now_ms();
        let elapsed = t.sla_elapsed(now);
        if elapsed < sla {
            // Time spent waiting for the member does not count: fire again when it is really due.
            desk.jobs
                .schedule(guild.id(), JOB_SLA, &job.payload, now + (sla - elapsed), job.dedupe_key.as_deref())
                .await
                .map_err(HandlerError::internal)?;
            return Ok(());
        }
        if first {
            t.first_response_breached = true;
        } else {
            t.resolution_breached = true;
        }
        Repo::new(guild.clone()).save(&t).await?;
        let what = if first { "first response" } else { "resolution" };
        let staff = desk.staff_roles(&guild, &t).await?;
        let roles: String = staff.iter().map(|r| format!("<@&{r}> ")).collect();
        let text = format!(
            "{roles}⏰ SLA breached: ticket {} has waited {} for a {what} (target {}).",
            t.label(),
            crate::text::duration(elapsed),
            crate::text::duration(sla),
        );
        let allowed =
            AllowedMentions { roles: staff.iter().map(|r| Id::new(*r)).collect(), ..AllowedMentions::default() };
        let log = desk.ids(&guild, core_settings::LOG_CHANNEL).await?;
        for channel in t.channel_id.into_iter().chain(log.first().copied()) {
            desk.app.http.create_message(Id::new(channel)).content(&text).allowed_mentions(Some(&allowed)).await?;
        }
        let escalate = desk.app.settings.get_bool(&guild, keys::SLA_ESCALATE).await?;
        if escalate && t.status != Status::Escalated {
            let t = desk.set_status(&guild, number, Status::Escalated, SYSTEM).await?;
            desk.refresh(&t).await?;
        }
        Ok(())
    }

    async fn autoclose(&self, job: &Job) -> HandlerResult {
        let desk = &self.desk;
        let guild = desk.app.guild(job.guild_id);
        let number = Self::number(job)?;
        let Some(t) = Repo::new(guild.clone()).get(number).await? else {
            return Ok(());
        };
        if t.status == Status::Closed {
            return Ok(());
        }
        let after = desk.app.settings.get_duration(&guild, keys::AUTO_CLOSE).await?.as_millis() as i64;
        if after == 0 {
            return Ok(());
        }
        let now = now_ms();
        if now - t.last_activity_at < after {
            return desk.schedule_autoclose(&guild, &t, t.last_activity_at).await;
        }
        let idle = crate::text::duration(now - t.last_activity_at);
        let t = desk.close(&guild, number, SYSTEM, Some(&format!("no activity for {idle}"))).await?;
        desk.refresh(&t).await
    }
}
