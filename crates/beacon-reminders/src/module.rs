//! `/remind`: the Discord adapter, and the job that delivers a reminder.

use std::sync::Arc;

use beacon_framework::lifecycle::JobKind;
use beacon_framework::privacy::PersonalData;
use beacon_framework::{
    Access, App, CommandCtx, CommandSpec, HandlerError, HandlerResult, Module, OptionSpec, Reply, async_trait,
};
use beacon_jobs::{Failure, Job, JobHandler, Jobs};
use beacon_store::{Schema, now_ms};
use serde_json::json;
use twilight_model::channel::message::AllowedMentions;
use twilight_model::guild::Permissions;
use twilight_model::id::Id;

use crate::model::{Reminder, Repo, SCHEMA};
use crate::schedule::{self, ScheduleError};
use crate::{JOB_DELIVER, MAX_PENDING};

/// A recurring run found this late (Beacon was down) is skipped, not delivered.
const LATE_MS: i64 = 15 * 60_000;
/// Longest reminder text.
const MAX_TEXT: u16 = 1500;

/// Reminders for members, in a channel or by DM.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemindersModule;

fn dedupe(id: i64) -> String {
    format!("reminder:{id}")
}

fn user_error(e: ScheduleError) -> HandlerError {
    HandlerError::user(e.to_string())
}

#[async_trait]
impl Module for RemindersModule {
    fn name(&self) -> &'static str {
        "reminders"
    }

    fn description(&self) -> &'static str {
        "Reminders in a channel or by DM, in each member's time zone"
    }

    fn schemas(&self) -> Vec<Schema> {
        vec![SCHEMA]
    }

    fn permissions(&self) -> Permissions {
        Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES
    }

    fn personal_data(&self) -> Vec<PersonalData> {
        vec![
            PersonalData::member(
                "reminders",
                "the member's pending reminders",
                "SELECT id, channel_id, text, next_at, every_days, at_minute, tz, last_run, created_at FROM reminders \
                 WHERE guild_id = $1 AND user_id = $2 ORDER BY id",
            )
            .erase(&[
                "UPDATE beacon_jobs SET state = 'cancelled' WHERE guild_id = $1 AND kind = 'reminders.deliver' \
                 AND state = 'pending' AND dedupe_key IN \
                 (SELECT 'reminder:' || id FROM reminders WHERE guild_id = $1 AND user_id = $2)",
                "DELETE FROM reminders WHERE guild_id = $1 AND user_id = $2",
            ]),
            PersonalData::member(
                "reminder_timezones",
                "the member's time zone",
                "SELECT tz, updated_at FROM reminder_timezones WHERE guild_id = $1 AND user_id = $2",
            )
            .erase(&["DELETE FROM reminder_timezones WHERE guild_id = $1 AND user_id = $2"]),
        ]
    }

    fn commands(&self) -> Vec<CommandSpec> {
        let text = || OptionSpec::string("text", "What to remind you of").required().max_length(MAX_TEXT);
        let dm = || OptionSpec::boolean("dm", "Send it to you by DM instead of this channel");
        vec![
            CommandSpec::new("remind", "Reminders, in this channel or by DM", Access::Everyone)
                .option(OptionSpec::subcommand(
                    "in",
                    "Remind you after a while",
                    vec![OptionSpec::string("duration", "e.g. 10m, 2h30m, 3d").required(), text(), dm()],
                ))
                .option(OptionSpec::subcommand(
                    "at",
                    "Remind you at a date and time (your time zone)",
                    vec![OptionSpec::string("when", "e.g. 2026-12-24 18:00, or 18:00").required(), text(), dm()],
                ))
                .option(OptionSpec::subcommand(
                    "every",
                    "Remind you every few days at a time of day (your time zone)",
                    vec![
                        OptionSpec::integer("days", "Every this many days (7 = weekly)", Some(1), Some(365)).required(),
                        OptionSpec::string("time", "Time of day, e.g. 09:00").required(),
                        text(),
                        dm(),
                    ],
                ))
                .option(OptionSpec::subcommand("list", "Your pending reminders", vec![]))
                .option(OptionSpec::subcommand(
                    "cancel",
                    "Cancel one of your reminders",
                    vec![OptionSpec::integer("id", "Its number from /remind list", Some(1), None).required()],
                ))
                .option(OptionSpec::subcommand(
                    "timezone",
                    "Set your time zone (an IANA name)",
                    vec![OptionSpec::string("name", "e.g. Europe/Paris, America/New_York").required()],
                )),
        ]
    }

    fn jobs(&self, app: &Arc<App>) -> Vec<JobKind> {
        vec![JobKind::new(JOB_DELIVER, Arc::new(Deliver { app: app.clone() }))]
    }

    async fn command(&self, ctx: CommandCtx) -> HandlerResult {
        let repo = Repo::new(ctx.guild.clone());
        let user = ctx.user_id();
        match ctx.options.subcommand() {
            Some("timezone") => {
                let name = ctx.options.str("name").unwrap_or_default().trim().to_owned();
                schedule::zone(&name).map_err(user_error)?;
                repo.set_timezone(user, &name).await?;
                ctx.reply(Reply::text(format!("Your time zone is now {name}.")).ephemeral()).await
            }
            Some("list") => {
                let list = repo.list(user).await?;
                let text = if list.is_empty() {
                    "You have no pending reminder.".to_owned()
                } else {
                    list.iter().map(line).collect::<Vec<_>>().join("\n")
                };
                ctx.reply(Reply::text(text).ephemeral()).await
            }
            Some("cancel") => {
                let id = ctx.options.int("id").unwrap_or_default();
                if !repo.delete(id, Some(user)).await? {
                    return Err(HandlerError::user(format!("You have no reminder #{id} (see /remind list).")));
                }
                Jobs::new(ctx.app.store.clone())
                    .cancel(ctx.guild_id(), &dedupe(id))
                    .await
                    .map_err(HandlerError::internal)?;
                ctx.reply(Reply::text(format!("Reminder #{id} cancelled.")).ephemeral()).await
            }
            Some(kind @ ("in" | "at" | "every")) => self.set(&ctx, &repo, kind).await,
            _ => Err(HandlerError::user("Use /remind in, at, every, list, cancel or timezone.")),
        }
    }
}

impl RemindersModule {
    async fn set(&self, ctx: &CommandCtx, repo: &Repo, kind: &str) -> HandlerResult {
        let user = ctx.user_id();
        let text = ctx.options.str("text").unwrap_or_default().trim().to_owned();
        if text.is_empty() {
            return Err(HandlerError::user("Write what to remind you of."));
        }
        let by_dm = ctx.options.bool("dm").unwrap_or(false);
        let channel_id = if by_dm {
            None
        } else {
            // The member must be able to post here, and so must Beacon.
            let member = ctx.caller.permissions.unwrap_or(Permissions::empty());
            let bot = ctx.interaction.app_permissions.unwrap_or(Permissions::empty());
            let can_post =
                |p: Permissions| p.contains(Permissions::ADMINISTRATOR) || p.contains(Permissions::SEND_MESSAGES);
            if !can_post(member) {
                return Err(HandlerError::user(
                    "You can't post in this channel, so Beacon won't remind you here. Use `dm:true`.",
                ));
            }
            if !can_post(bot) {
                return Err(HandlerError::user("Beacon can't post in this channel. Use `dm:true`, or ask an admin."));
            }
            Some(ctx.channel_id().ok_or_else(|| HandlerError::user("Use this in a channel, or with `dm:true`."))?)
        };
        let tz_name = repo.timezone(user).await?.unwrap_or_else(|| "UTC".to_owned());
        let tz = schedule::zone(&tz_name).map_err(user_error)?;
        let now = now_ms();
        let (next_at, every_days, at_minute) = match kind {
            "in" => {
                (schedule::after(now, ctx.options.str("duration").unwrap_or_default()).map_err(user_error)?, None, None)
            }
            "at" => {
                (schedule::at(now, ctx.options.str("when").unwrap_or_default(), &tz).map_err(user_error)?, None, None)
            }
            _ => {
                let days = ctx.options.int("days").unwrap_or(1).clamp(1, 365);
                let minute =
                    schedule::minute_of_day(ctx.options.str("time").unwrap_or_default()).map_err(user_error)?;
                (schedule::next_run(now, now, 1, minute, &tz).map_err(user_error)?, Some(days), Some(minute))
            }
        };
        let reminder = Reminder {
            id: 0,
            user_id: user,
            channel_id,
            text,
            next_at,
            every_days,
            at_minute,
            tz: tz_name,
            last_run: None,
        };
        let Some(id) = repo.insert(&reminder, MAX_PENDING).await? else {
            return Err(HandlerError::user(format!(
                "You already have {MAX_PENDING} pending reminders here; cancel one first (/remind list)."
            )));
        };
        Jobs::new(ctx.app.store.clone())
            .schedule(ctx.guild_id(), JOB_DELIVER, &payload(id, next_at), next_at, Some(&dedupe(id)))
            .await
            .map_err(HandlerError::internal)?;
        let saved = Reminder { id, ..reminder };
        ctx.reply(Reply::text(format!("Reminder set: {}", line(&saved))).ephemeral()).await
    }
}

/// `#3 — <t:…:f> (every 1 day) in <#…>: text`
fn line(r: &Reminder) -> String {
    let every = r.every_days.map(|d| format!(" (every {d} day{})", if d == 1 { "" } else { "s" })).unwrap_or_default();
    let place = r.channel_id.map(|c| format!("in <#{c}>")).unwrap_or_else(|| "by DM".to_owned());
    format!("#{} — <t:{}:f>{every} {place}, {}: {}", r.id, r.next_at / 1000, r.tz, r.text)
}

/// The job's input: the reminder and the run it delivers (its scheduled time, unix ms — the job's
/// own `run_at` moves when an attempt is retried, the run does not).
fn payload(id: i64, run: i64) -> serde_json::Value {
    json!({ "id": id, "run": run })
}

/// The nonce of one run of a reminder: the same for every attempt at that run (re-runs after a
/// crashed worker, retries), different for every run. `r<id>.<run seconds>` in base 36: at most
/// 1 + 13 + 1 + 8 characters for any reminder id and any run before the year 90000, within
/// Discord's 25.
fn nonce(id: i64, run_ms: i64) -> String {
    fn base36(mut n: u64) -> String {
        let mut digits = Vec::new();
        loop {
            digits.push(b"0123456789abcdefghijklmnopqrstuvwxyz"[(n % 36) as usize]);
            n /= 36;
            if n == 0 {
                break;
            }
        }
        digits.reverse();
        String::from_utf8_lossy(&digits).into_owned()
    }
    format!("r{}.{}", base36(id.unsigned_abs()), base36((run_ms / 1000).unsigned_abs()))
}

/// Whether Discord refused the request for good (a deleted channel, closed DMs, lost access):
/// a retry would be refused again. Rate limits, server errors and network failures are retried.
fn refused(e: &SendError) -> bool {
    matches!(e, SendError::Http(e) if matches!(e.kind(), twilight_http::error::ErrorType::Response { status, .. }
        if status.is_client_error() && status.get() != 429))
}

/// Why a reminder was not posted.
#[derive(Debug, thiserror::Error)]
enum SendError {
    /// Discord refused the request or could not be reached.
    #[error(transparent)]
    Http(#[from] twilight_http::Error),
    /// Discord's answer (the DM channel) could not be read.
    #[error(transparent)]
    Body(#[from] twilight_http::response::DeserializeBodyError),
}

/// Delivers a due reminder, at least once: the job runner's lease is the claim (a worker killed
/// mid-run stops heartbeating and another takes the job over once the lease expires), and the
/// message carries a nonce of this run with `enforce_nonce`, so Discord returns the message a
/// killed worker already posted instead of posting it twice. A run recorded as handled
/// (`last_run`) is not sent again at all.
struct Deliver {
    app: Arc<App>,
}

#[async_trait]
impl JobHandler for Deliver {
    async fn run(&self, job: &Job) -> Result<(), Failure> {
        let id = job.payload["id"].as_i64().ok_or_else(|| Failure::permanent("reminder job without an id"))?;
        // Jobs scheduled before the run was part of the payload: the job's time was the run's.
        let run = job.payload["run"].as_i64().unwrap_or(job.run_at);
        let repo = Repo::new(self.app.guild(job.guild_id));
        let Some(reminder) = repo.get(id).await.map_err(|e| Failure::retry(e.to_string()))? else {
            return Ok(()); // cancelled or erased meanwhile
        };
        let now = now_ms();
        if reminder.last_run.is_some_and(|last| last >= run) {
            tracing::info!(guild_id = job.guild_id, reminder = id, "reminder run already handled; not sent again");
        } else if reminder.every_days.is_some() && now - job.run_at > LATE_MS {
            tracing::info!(guild_id = job.guild_id, reminder = id, "recurring reminder run missed; skipped");
        } else if let Err(e) = self.send(&reminder, run).await {
            if !refused(&e) {
                return Err(Failure::retry(format!("reminder {id} not delivered yet: {e}")));
            }
            tracing::info!(guild_id = job.guild_id, reminder = id, error = %e, "Discord refused the reminder");
        }
        match (reminder.every_days, reminder.at_minute) {
            (Some(days), Some(minute)) => {
                let tz = schedule::zone(&reminder.tz).map_err(|e| Failure::permanent(e.to_string()))?;
                let next = schedule::next_run(run, now.max(run), days, minute, &tz)
                    .map_err(|e| Failure::permanent(e.to_string()))?;
                repo.finish_run(id, run, next).await.map_err(|e| Failure::retry(e.to_string()))?;
                Jobs::new(self.app.store.clone())
                    .schedule(job.guild_id, JOB_DELIVER, &payload(id, next), next, Some(&dedupe(id)))
                    .await
                    .map_err(|e| Failure::retry(e.to_string()))?;
            }
            _ => {
                repo.delete(id, None).await.map_err(|e| Failure::retry(e.to_string()))?;
            }
        }
        Ok(())
    }
}

impl Deliver {
    /// Posts the run `run` of the reminder, once (its nonce); it pings only the member who set
    /// it, never what their text mentions.
    async fn send(&self, r: &Reminder, run: i64) -> Result<(), SendError> {
        let channel = match r.channel_id {
            Some(c) => Id::new(c),
            None => self.app.http.create_private_channel(Id::new(r.user_id)).await?.model().await?.id,
        };
        let mentions = AllowedMentions { users: vec![Id::new(r.user_id)], ..AllowedMentions::default() };
        let content = format!("⏰ <@{}>, you asked to be reminded: {}", r.user_id, r.text);
        beacon_discord::rest::create_message_once(&self.app.http, channel, &content, &mentions, &nonce(r.id, run))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::nonce;

    #[test]
    fn a_runs_nonce_is_stable_distinct_and_within_discords_limit() {
        let run = 1_796_000_000_000; // 2026
        assert_eq!(nonce(42, run), nonce(42, run), "every attempt at a run sends the same nonce");
        assert_ne!(nonce(42, run), nonce(42, run + 86_400_000), "the next run is another message");
        assert_ne!(nonce(42, run), nonce(43, run));
        let far = 88_000 * 365 * 86_400_000i64; // the year 90000
        assert!(nonce(i64::MAX, far).len() <= 25, "{}", nonce(i64::MAX, far));
    }
}
