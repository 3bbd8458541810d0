//! The moderation workflow: who may act on whom (Discord's permissions and role hierarchy,
//! checked before anything happens), the case, the DM (before a kick or ban), the action in
//! Discord with its reason in the audit log, the timed job, the mod-log message.

use std::sync::Arc;
use std::time::Duration;

use beacon_framework::app::core_settings;
use beacon_framework::{App, HandlerError, HandlerResult};
use beacon_jobs::Jobs;
use beacon_store::{GuildStore, now_ms};
use serde_json::json;
use twilight_http::request::AuditLogReason;
use twilight_model::channel::message::{AllowedMentions, Component};
use twilight_model::guild::{Permissions, Role};
use twilight_model::id::Id;
use twilight_model::util::Timestamp;

use crate::duration;
use crate::model::{Case, CaseKind, DmStatus, NewCase, Repo, Source};
use crate::{keys, text};

/// Job kind: lift a temporary ban when it ends.
pub const JOB_UNBAN: &str = "moderation.unban";
/// Job kind: renew a timeout past Discord's 28 days, and record its end.
pub const JOB_TIMEOUT: &str = "moderation.timeout";

/// Discord's longest timeout, minus a minute for clocks that disagree.
pub const MAX_TIMEOUT_MS: i64 = 28 * 86_400_000 - 60_000;
/// A long timeout is renewed this long before Discord would lift it.
pub const RENEW_AHEAD_MS: i64 = 3_600_000;
/// Discord's longest audit-log reason.
const AUDIT_REASON_MAX: usize = 512;

/// One moderation action to carry out.
#[derive(Debug, Clone)]
pub struct Action<'a> {
    /// What to do.
    pub kind: CaseKind,
    /// On whom.
    pub target: u64,
    /// Who acts (the bot for escalations).
    pub moderator: u64,
    /// The acting member's roles and permissions (`None`: Beacon itself acts).
    pub actor: Option<(&'a [u64], Permissions)>,
    /// Why.
    pub reason: &'a str,
    /// For timeouts and temporary bans.
    pub duration: Option<Duration>,
    /// A ban deletes the user's messages of this many seconds.
    pub delete_message_seconds: u32,
    /// Where it comes from.
    pub source: Source,
    /// The case it follows from.
    pub related: Option<i64>,
}

impl<'a> Action<'a> {
    /// An action of `kind` on `target` by `moderator`, from a command.
    pub fn new(kind: CaseKind, target: u64, moderator: u64, reason: &'a str) -> Action<'a> {
        Action {
            kind,
            target,
            moderator,
            actor: None,
            reason,
            duration: None,
            delete_message_seconds: 0,
            source: Source::Command,
            related: None,
        }
    }
}

/// What Discord says about the people involved.
struct Facts {
    owner: Option<u64>,
    guild_name: String,
    roles: Vec<Role>,
    bot_roles: Vec<u64>,
    /// The target's roles and timeout end, when they are a member.
    target: Option<(Vec<u64>, Option<Timestamp>)>,
}

impl Facts {
    /// Rank of the highest of these roles, as Discord orders them (`@everyone` lowest).
    fn top(&self, roles: &[u64]) -> (i64, i64, Option<u64>) {
        self.roles
            .iter()
            .filter(|r| roles.contains(&r.id.get()))
            .map(|r| (r.position, -(r.id.get() as i64), Some(r.id.get())))
            .max()
            .unwrap_or((0, i64::MIN, None))
    }

    fn permissions(&self, guild_id: u64, roles: &[u64]) -> Permissions {
        let p = self
            .roles
            .iter()
            .filter(|r| r.id.get() == guild_id || roles.contains(&r.id.get()))
            .fold(Permissions::empty(), |acc, r| acc | r.permissions);
        if p.contains(Permissions::ADMINISTRATOR) { Permissions::all() } else { p }
    }
}

/// The Discord permission an action needs, with its name as the client shows it.
fn needed(kind: CaseKind) -> Option<(Permissions, &'static str)> {
    match kind {
        CaseKind::Ban | CaseKind::Unban => Some((Permissions::BAN_MEMBERS, "Ban Members")),
        CaseKind::Kick => Some((Permissions::KICK_MEMBERS, "Kick Members")),
        CaseKind::Timeout | CaseKind::Untimeout => Some((Permissions::MODERATE_MEMBERS, "Timeout Members")),
        CaseKind::Warn | CaseKind::Note => None,
    }
}

use beacon_discord::rest::discord_error;

fn is_not_found(e: &twilight_http::Error) -> bool {
    discord_error(e).is_some_and(|(s, _)| s == 404)
}

/// The reason Discord's audit log shows: `Case #12 by 1234: spam` (at most 512 characters).
pub(crate) fn audit_reason(number: i64, moderator: u64, reason: &str) -> String {
    format!("Case #{number} by {moderator}: {reason}").chars().take(AUDIT_REASON_MAX).collect()
}

/// Discord's timestamp of unix ms.
pub(crate) fn timestamp(ms: i64) -> Result<Timestamp, HandlerError> {
    Timestamp::from_micros(ms.saturating_mul(1000)).map_err(HandlerError::internal)
}

/// The moderation service of one app.
#[derive(Clone)]
pub struct Moderation {
    /// The app.
    pub app: Arc<App>,
    /// The durable jobs.
    pub jobs: Jobs,
    bot: Arc<tokio::sync::OnceCell<u64>>,
}

impl Moderation {
    /// The service over `app`, sharing `bot` (the bot's user id, learned once).
    pub fn new(app: Arc<App>, bot: Arc<tokio::sync::OnceCell<u64>>) -> Moderation {
        let jobs = Jobs::new(app.store.clone());
        Moderation { app, jobs, bot }
    }

    /// The bot's own user id.
    pub async fn bot_id(&self) -> HandlerResult<u64> {
        self.bot
            .get_or_try_init(|| async {
                let me = self.app.http.current_user().await?.model().await?;
                Ok::<u64, HandlerError>(me.id.get())
            })
            .await
            .copied()
    }

    async fn facts(&self, guild: &GuildStore, target: u64) -> HandlerResult<Facts> {
        let gid = Id::new(guild.id());
        let bot = self.bot_id().await?;
        let record = self.app.permissions.facts(guild).await?.record.clone();
        let (owner, guild_name) = match record {
            Some(r) if r.owner_id.is_some() && !r.name.is_empty() => (r.owner_id, r.name),
            _ => {
                let g = self.app.http.guild(gid).await?.model().await?;
                (Some(g.owner_id.get()), g.name)
            }
        };
        let roles = self.app.http.roles(gid).await?.models().await?;
        let bot_member = self.app.http.guild_member(gid, Id::new(bot)).await?.model().await?;
        let target = match self.app.http.guild_member(gid, Id::new(target)).await {
            Ok(resp) => {
                let m = resp.model().await?;
                Some((m.roles.iter().map(|r| r.get()).collect(), m.communication_disabled_until))
            }
            Err(e) if is_not_found(&e) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Facts { owner, guild_name, roles, bot_roles: bot_member.roles.iter().map(|r| r.get()).collect(), target })
    }

    /// Refuses, saying why, what Discord would refuse or what makes no sense.
    async fn check(&self, guild: &GuildStore, a: &Action<'_>) -> HandlerResult<Facts> {
        let refuse = |m: String| Err(HandlerError::user(m));
        let bot = self.bot_id().await?;
        if a.target == a.moderator && a.actor.is_some() {
            return refuse("You can't moderate yourself.".into());
        }
        if a.target == bot {
            return refuse("I won't act on myself.".into());
        }
        let facts = self.facts(guild, a.target).await?;
        let t = format!("<@{}>", a.target);
        if let Some((permission, name)) = needed(a.kind) {
            if let Some((_, perms)) = a.actor
                && !(perms.contains(permission) || perms.contains(Permissions::ADMINISTRATOR))
            {
                return refuse(format!("You need Discord's **{name}** permission for this."));
            }
            if !facts.permissions(guild.id(), &facts.bot_roles).contains(permission) {
                return refuse(format!(
                    "I need Discord's **{name}** permission for this. An admin can give it to my role."
                ));
            }
        }
        let member_only = matches!(a.kind, CaseKind::Warn | CaseKind::Kick | CaseKind::Timeout | CaseKind::Untimeout);
        let Some((target_roles, timed_out_until)) = &facts.target else {
            if member_only {
                return refuse(format!("{t} is not a member of this server."));
            }
            return Ok(facts);
        };
        if matches!(a.kind, CaseKind::Note | CaseKind::Unban) {
            return Ok(facts);
        }
        if facts.owner == Some(a.target) {
            return refuse(format!("{t} owns this server: nobody can moderate the owner."));
        }
        let target_top = facts.top(target_roles);
        let role_name = |top: &(i64, i64, Option<u64>)| top.2.map_or("no role".to_owned(), |r| format!("<@&{r}>"));
        if let Some((roles, _)) = a.actor
            && facts.owner != Some(a.moderator)
        {
            let mine = facts.top(roles);
            if target_top >= mine {
                return refuse(format!(
                    "You can't moderate {t}: their highest role ({}) is not below yours ({}).",
                    role_name(&target_top),
                    role_name(&mine)
                ));
            }
        }
        let bot_top = facts.top(&facts.bot_roles);
        if needed(a.kind).is_some() && target_top >= bot_top {
            return refuse(format!(
                "I can't moderate {t}: their highest role ({}) is not below mine ({}). Move my role above it in Server Settings → Roles.",
                role_name(&target_top),
                role_name(&bot_top)
            ));
        }
        if a.kind == CaseKind::Timeout
            && facts.permissions(guild.id(), target_roles).contains(Permissions::ADMINISTRATOR)
        {
            return refuse(format!("{t} is an administrator: Discord does not let anyone time them out."));
        }
        if a.kind == CaseKind::Untimeout {
            let active = timed_out_until.is_some_and(|u| u.as_micros() / 1000 > now_ms());
            if !active {
                return refuse(format!("{t} is not timed out."));
            }
        }
        Ok(facts)
    }

    /// Carries out `a` in `guild`: checks, records the case, tells the member (before a kick
    /// or ban), acts in Discord, schedules the timed end, posts the mod-log message.
    pub async fn act(&self, guild: &GuildStore, a: &Action<'_>) -> HandlerResult<Case> {
        let facts = self.check(guild, a).await?;
        let gid = Id::new(guild.id());
        if a.kind == CaseKind::Unban
            && let Err(e) = self.app.http.ban(gid, Id::new(a.target)).await
        {
            if is_not_found(&e) {
                return Err(HandlerError::user(format!("<@{}> is not banned.", a.target)));
            }
            return Err(e.into());
        }
        let repo = Repo::new(guild.clone());
        let dm_wanted =
            matches!(a.kind, CaseKind::Warn | CaseKind::Timeout | CaseKind::Untimeout | CaseKind::Kick | CaseKind::Ban)
                && self.app.settings.get_bool(guild, keys::DM_MEMBERS).await?;
        let dm_status = if dm_wanted { DmStatus::Pending } else { DmStatus::NotSent };
        let new = NewCase {
            duration_ms: a.duration.map(duration::millis),
            source: a.source,
            dm_status,
            related_case: a.related,
            ..NewCase::new(a.kind, a.target, a.moderator, a.reason)
        };
        let case = repo.create(&new, now_ms()).await?;
        if dm_wanted {
            if facts.target.is_some() {
                self.dm(guild, &case, &facts.guild_name).await?;
            } else {
                repo.set_dm(case.number, DmStatus::NotSent, Some("not a member of this server"), now_ms()).await?;
            }
        }
        if let Err(e) = self.perform(guild, &case, a).await {
            let why = match &e {
                HandlerError::Discord(inner) => format!("Discord refused the action: {inner}"),
                other => other.to_string(),
            };
            repo.set_failed(case.number, &why, now_ms()).await?;
            let case = self.case(guild, case.number).await?;
            self.publish(guild, &case).await;
            return Err(HandlerError::user(format!("Case {} is recorded, but {why}", case.label())));
        }
        self.supersede(guild, &case).await?;
        let case = self.case(guild, case.number).await?;
        self.publish(guild, &case).await;
        Ok(case)
    }

    /// Applies the guild's escalation rule after warning `warn`: N warnings within the window
    /// (counted since the member's last escalation) become their own case — a timeout, kick or
    /// ban by Beacon. Returns that case; a refusal (e.g. the member outranks the bot) is kept in
    /// the warning's history instead.
    pub async fn escalate(&self, guild: &GuildStore, warn: &Case) -> HandlerResult<Option<Case>> {
        let settings = &self.app.settings;
        let needed = settings.get_i64(guild, keys::ESCALATION_WARNINGS).await?;
        if needed <= 0 || warn.kind != CaseKind::Warn {
            return Ok(None);
        }
        let window = settings.get_duration(guild, keys::ESCALATION_WINDOW).await?;
        let repo = Repo::new(guild.clone());
        let since = (now_ms() - duration::millis(window)).max(repo.last_escalation(warn.target_id).await?.unwrap_or(0));
        let warnings = repo.warnings_after(warn.target_id, since).await?;
        if (warnings.len() as i64) < needed {
            return Ok(None);
        }
        // Two warnings recorded at once both see the same run of warnings: only the first to
        // claim it escalates (across processes too). A later warning makes a longer run, so a
        // refused escalation is tried again on the next warning.
        let first = warnings.first().copied().unwrap_or(warn.number);
        let run = format!("moderation-escalation:{}:{}:{first}", guild.id(), warn.target_id);
        if !beacon_framework::module::claim_event(&self.app, &run, warnings.len() as u64).await {
            return Ok(None);
        }
        let kind = match settings.get_string(guild, keys::ESCALATION_ACTION).await?.as_str() {
            "kick" => CaseKind::Kick,
            "ban" => CaseKind::Ban,
            _ => CaseKind::Timeout,
        };
        let length = settings.get_duration(guild, keys::ESCALATION_DURATION).await?;
        let length = match (kind, length.is_zero()) {
            (CaseKind::Kick, _) | (CaseKind::Ban, true) => None,
            (CaseKind::Timeout, true) => Some(Duration::from_secs(3600)),
            _ => Some(length),
        };
        let cases = warnings.iter().map(|n| format!("#{n}")).collect::<Vec<_>>().join(", ");
        let reason = format!("Escalation: {} warnings within {} ({cases})", warnings.len(), duration::format(window));
        let bot = self.bot_id().await?;
        let action = Action {
            duration: length,
            source: Source::Escalation,
            related: Some(warn.number),
            ..Action::new(kind, warn.target_id, bot, &reason)
        };
        match self.act(guild, &action).await {
            Ok(case) => Ok(Some(case)),
            Err(HandlerError::User(why)) => {
                repo.add_event(warn.number, bot, "escalation", &format!("not applied: {why}"), now_ms()).await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Case `number`, or a refusal naming it.
    pub async fn case(&self, guild: &GuildStore, number: i64) -> HandlerResult<Case> {
        Repo::new(guild.clone())
            .get(number)
            .await?
            .ok_or_else(|| HandlerError::user(format!("There is no case #{number} in this server.")))
    }

    /// The action itself, in Discord, and its timed job.
    async fn perform(&self, guild: &GuildStore, case: &Case, a: &Action<'_>) -> HandlerResult {
        let http = &self.app.http;
        let (gid, uid) = (Id::new(guild.id()), Id::new(case.target_id));
        let reason = audit_reason(case.number, case.moderator_id, &case.reason);
        match case.kind {
            CaseKind::Warn | CaseKind::Note => {}
            CaseKind::Kick => {
                http.remove_guild_member(gid, uid).reason(&reason).await?;
            }
            CaseKind::Ban => {
                http.create_ban(gid, uid).delete_message_seconds(a.delete_message_seconds).reason(&reason).await?;
                if let Some(ends_at) = case.ends_at {
                    let payload = json!({"case": case.number, "user": case.target_id});
                    self.jobs
                        .schedule(guild.id(), JOB_UNBAN, &payload, ends_at, Some(&format!("ban:{}", case.target_id)))
                        .await
                        .map_err(HandlerError::internal)?;
                }
            }
            CaseKind::Unban => {
                http.delete_ban(gid, uid).reason(&reason).await?;
            }
            CaseKind::Timeout => {
                let ends_at = case.ends_at.unwrap_or_else(now_ms);
                let until = ends_at.min(now_ms() + MAX_TIMEOUT_MS);
                http.update_guild_member(gid, uid)
                    .communication_disabled_until(Some(timestamp(until)?))
                    .reason(&reason)
                    .await?;
                self.schedule_timeout(guild, case, until).await?;
            }
            CaseKind::Untimeout => {
                http.update_guild_member(gid, uid).communication_disabled_until(None).reason(&reason).await?;
            }
        }
        Ok(())
    }

    /// The next run of a timeout's job: a renewal shortly before `applied_until` when the
    /// timeout lasts longer, else the record of its end.
    pub(crate) async fn schedule_timeout(&self, guild: &GuildStore, case: &Case, applied_until: i64) -> HandlerResult {
        let ends_at = case.ends_at.unwrap_or(applied_until);
        let run_at = if applied_until < ends_at { applied_until - RENEW_AHEAD_MS } else { ends_at };
        let payload = json!({"case": case.number, "user": case.target_id});
        self.jobs
            .schedule(guild.id(), JOB_TIMEOUT, &payload, run_at, Some(&format!("timeout:{}", case.target_id)))
            .await
            .map_err(HandlerError::internal)?;
        Ok(())
    }

    /// A new case ends the timed cases it replaces: a ban or unban ends a running temporary
    /// ban, a timeout or its removal a running timeout (their pending jobs are replaced or
    /// cancelled).
    pub(crate) async fn supersede(&self, guild: &GuildStore, case: &Case) -> HandlerResult {
        let (kinds, key, note) = match case.kind {
            CaseKind::Ban => (CaseKind::Ban, "ban", format!("replaced by case {}", case.label())),
            CaseKind::Unban => (CaseKind::Ban, "ban", format!("lifted early by case {}", case.label())),
            CaseKind::Timeout => (CaseKind::Timeout, "timeout", format!("replaced by case {}", case.label())),
            CaseKind::Untimeout => (CaseKind::Timeout, "timeout", format!("lifted early by case {}", case.label())),
            _ => return Ok(()),
        };
        let repo = Repo::new(guild.clone());
        for old in repo.running(case.target_id, &[kinds]).await? {
            if old.number != case.number && repo.end(old.number, case.moderator_id, &note, now_ms()).await? {
                let old = self.case(guild, old.number).await?;
                self.publish(guild, &old).await;
            }
        }
        if !case.is_running() {
            self.jobs.cancel(guild.id(), &format!("{key}:{}", case.target_id)).await.map_err(HandlerError::internal)?;
        }
        Ok(())
    }

    /// Tells the member by DM and records the outcome; a failure is recorded, never raised.
    async fn dm(&self, guild: &GuildStore, case: &Case, guild_name: &str) -> HandlerResult {
        let repo = Repo::new(guild.clone());
        let text = text::dm(case, guild_name);
        let sent = async {
            let channel = self.app.http.create_private_channel(Id::new(case.target_id)).await?.model().await?;
            let mut components: Vec<Component> = Vec::new();
            if case.kind == CaseKind::Ban && crate::appeals::channel(self, guild).await?.is_some() {
                components.push(crate::appeals::appeal_button(guild.id(), case));
            }
            self.app
                .http
                .create_message(channel.id)
                .content(&text)
                .components(&components)
                .allowed_mentions(Some(&AllowedMentions::default()))
                .await?;
            Ok::<(), HandlerError>(())
        }
        .await;
        let (status, detail) = match sent {
            Ok(()) => (DmStatus::Sent, None),
            Err(HandlerError::Discord(e)) => {
                let detail = match e.downcast_ref::<twilight_http::Error>().and_then(discord_error) {
                    Some((_, Some(50007))) => {
                        "Discord refused it (50007): the member does not accept DMs from this server".to_owned()
                    }
                    Some((status, code)) => {
                        format!("Discord answered {status}{}", code.map(|c| format!(" ({c})")).unwrap_or_default())
                    }
                    None => format!("the request failed: {e}"),
                };
                (DmStatus::Failed, Some(detail))
            }
            Err(other) => (DmStatus::Failed, Some(other.to_string())),
        };
        if let Some(d) = &detail {
            tracing::info!(guild_id = guild.id(), case = case.number, detail = %d, "moderation DM not delivered");
        }
        repo.set_dm(case.number, status, detail.as_deref(), now_ms()).await?;
        Ok(())
    }

    /// The mod-log channel of `guild`, if any.
    async fn log_channel(&self, guild: &GuildStore) -> HandlerResult<Option<u64>> {
        let own = self.app.settings.get_ids(guild, keys::LOG_CHANNEL).await?;
        if let Some(c) = own.first() {
            return Ok(Some(*c));
        }
        Ok(self.app.settings.get_ids(guild, core_settings::LOG_CHANNEL).await?.first().copied())
    }

    /// Posts the case's mod-log message, or edits it in place; logs (never raises) a failure:
    /// the case itself is what counts.
    pub async fn publish(&self, guild: &GuildStore, case: &Case) {
        if let Err(e) = self.try_publish(guild, case).await {
            tracing::warn!(error = %e, guild_id = guild.id(), case = case.number, "mod-log message not updated");
        }
    }

    async fn try_publish(&self, guild: &GuildStore, case: &Case) -> HandlerResult {
        let http = &self.app.http;
        let embed = text::embed(case, &Repo::new(guild.clone()).events(case.number).await?);
        let embeds = [embed];
        if let (Some(channel), Some(message)) = (case.log_channel_id, case.log_message_id) {
            match http.update_message(Id::new(channel), Id::new(message)).embeds(Some(&embeds)).await {
                Ok(_) => return Ok(()),
                // Deleted by someone: post it again below.
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let Some(channel) = self.log_channel(guild).await? else { return Ok(()) };
        let message = http.create_message(Id::new(channel)).embeds(&embeds).await?.model().await?;
        let first = case.log_message_id.is_none();
        let repo = Repo::new(guild.clone());
        if !repo.set_log_message(case.number, channel, message.id.get(), first).await? {
            // Another worker posted this case's message first: keep one.
            http.delete_message(Id::new(channel), message.id).await?;
        }
        Ok(())
    }
}
