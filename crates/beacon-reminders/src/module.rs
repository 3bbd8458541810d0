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
                "SELECT id, channel_id, text, next_at, every_days, at_minute, tz, created_at FROM reminders \
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
        let reminder = Reminder { id: 0, user_id: user, channel_id, text, next_at, every_days, at_minute, tz: tz_name };
        let Some(id) = repo.insert(&reminder, MAX_PENDING).await? else {
            return Err(HandlerError::user(format!(
                "You already have {MAX_PENDING} pending reminders here; cancel one first (/remind list)."
            )));
        };
        Jobs::new(ctx.app.store.clone())
            .schedule(ctx.guild_id(), JOB_DELIVER, &json!({ "id": id }), next_at, Some(&dedupe(id)))
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

/// Delivers a due reminder.
struct Deliver {
    app: Arc<App>,
}

#[async_trait]
impl JobHandler for Deliver {
    async fn run(&self, job: &Job) -> Result<(), Failure> {
        let id = job.payload["id"].as_i64().ok_or_else(|| Failure::permanent("reminder job without an id"))?;
        let repo = Repo::new(self.app.guild(job.guild_id));
        let Some(reminder) = repo.get(id).await.map_err(|e| Failure::retry(e.to_string()))? else {
            return Ok(()); // cancelled or erased meanwhile
        };
        let now = now_ms();
        let missed = reminder.every_days.is_some() && now - job.run_at > LATE_MS;
        // Once per run across workers: the claim is taken before sending, so a run is never sent twice.
        let first = self
            .app
            .store
            .claim_once(&format!("reminder:{id}"), u64::try_from(job.run_at).unwrap_or_default())
            .await
            .map_err(|e| Failure::retry(e.to_string()))?;
        if missed {
            tracing::info!(guild_id = job.guild_id, reminder = id, "recurring reminder run missed; skipped");
        } else if first && let Err(e) = self.send(&reminder).await {
            tracing::info!(guild_id = job.guild_id, reminder = id, error = %e, "reminder not delivered");
        }
        match (reminder.every_days, reminder.at_minute) {
            (Some(days), Some(minute)) => {
                let tz = schedule::zone(&reminder.tz).map_err(|e| Failure::permanent(e.to_string()))?;
                let next = schedule::next_run(job.run_at, now.max(job.run_at), days, minute, &tz)
                    .map_err(|e| Failure::permanent(e.to_string()))?;
                repo.set_next(id, next).await.map_err(|e| Failure::retry(e.to_string()))?;
                Jobs::new(self.app.store.clone())
                    .schedule(job.guild_id, JOB_DELIVER, &json!({ "id": id }), next, Some(&dedupe(id)))
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
    /// Posts the reminder; it pings only the member who set it, never what their text mentions.
    async fn send(&self, r: &Reminder) -> Result<(), HandlerError> {
        let channel = match r.channel_id {
            Some(c) => Id::new(c),
            None => self.app.http.create_private_channel(Id::new(r.user_id)).await?.model().await?.id,
        };
        let mentions = AllowedMentions { users: vec![Id::new(r.user_id)], ..AllowedMentions::default() };
        let content = format!("⏰ <@{}>, you asked to be reminded: {}", r.user_id, r.text);
        self.app.http.create_message(channel).content(&content).allowed_mentions(Some(&mentions)).await?;
        Ok(())
    }
}
